"""The DDPM U-Net (Ho et al.) at width 32 on scikit-learn's 8x8 digits, sub-VP SDE, continuous DSM.

9000 steps, the last 1000 with the learning rate decaying linearly to 0 (`optim.decay_steps`):
12.2 minutes on 2 quiet cores at 0.081 s/step (0.091 in a second measurement;
experiments/results/benchmark_train_cpu_quiet.json; the width cannot shrink: GroupNorm(32) needs
channel counts that 32 divides). Digits FD of 180
samples, mean over sampling seeds 0-7 (held-out digits: 7.82; their mean over 20 redrawn splits
7.14, experiments/heldout_fd_spread.py): Euler-Maruyama 500 (default) 7.88, ODE Heun 25
8.08, EDM Heun 18 8.00, DDIM 50 8.08 (4400 steps: 9.24, 9.05, 9.35; at lr 2e-3 instead of 1e-3,
9000 steps: 8.73, 8.72, 8.68): none below the held-out digits in 15 minutes (the default by
0.06); experiments/results/reproduce_digits.md.

    python -m score_sde.main --config configs/digits/subvp_ddpm.py --workdir runs/digits_subvp_ddpm
"""

from score_sde.config_defaults import get_default_config


def get_config():
  config = get_default_config()
  config.data.name = "digits"
  config.data.image_size = 8
  config.data.num_channels = 1
  config.data.uniform_dequantization = True
  config.data.centered = True
  config.sde.name = "subvpsde"
  config.model.name = "ddpm"
  model = config.model
  model.nf = 32  # GroupNorm(32) in every block of the DDPM network
  model.ch_mult = (1, 2)
  model.num_res_blocks = 1
  model.attn_resolutions = (4,)
  model.dropout = 0.0
  model.centered = True
  config.training.reduce_mean = True
  config.training.batch_size = 64
  config.training.n_iters = 9000
  config.training.n_jitted_steps = 10
  config.training.log_freq = 100
  config.training.snapshot_freq = 1000
  config.optim.lr = 1e-3
  config.optim.warmup = 100
  config.optim.decay_steps = 1000
  config.sampling.num_steps = 500
  config.sampling.num_samples = 64
  config.sampling.batch_size = 64
  return config
