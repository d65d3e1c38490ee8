"""DDPM++ (the `ncsnpp` network: BigGAN residual blocks, no FIR, no pyramids, positional
embedding of 999 t) at width 16 on scikit-learn's 8x8 digits, VP SDE, continuous DSM (CPU).

20000 steps, the last 2000 with the learning rate decaying linearly to 0 (`optim.decay_steps`),
EMA warm-up on: 11.5 minutes on 2 quiet cores at 0.035 s/step (0.032 in a second measurement)
(experiments/results/benchmark_train_cpu_quiet.json). Digits FD of 180 samples, mean over sampling
seeds 0-7 (held-out digits: 7.82; their mean over 20 redrawn splits 7.14,
experiments/heldout_fd_spread.py): Euler-Maruyama 500 (default) 7.76, ODE Heun 25 7.05 (on EDM's
grid, the fixed-step ODE's default; 7.89 on the release's uniform t grid, which spends few steps
at small t), EDM Heun 18 6.96, DDIM 50 7.06 (6000 steps at a constant rate: ODE Heun 25 on the
uniform grid 8.20, EDM Heun 18 7.64, DDIM 50 7.62); experiments/results/reproduce_digits.md.

    python -m score_sde.main --config configs/digits/vp_ddpmpp.py --workdir runs/digits_vp_ddpmpp
"""

from score_sde.config_defaults import get_default_config


def get_config():
  config = get_default_config()
  config.data.name = "digits"
  config.data.image_size = 8
  config.data.num_channels = 1
  config.data.uniform_dequantization = True
  config.data.centered = True
  config.sde.name = "vpsde"
  config.model.name = "ncsnpp"
  model = config.model
  model.nf = 16
  model.ch_mult = (1, 2)
  model.num_res_blocks = 1
  model.attn_resolutions = (4,)
  model.dropout = 0.0
  model.fir = False
  model.resblock_type = "biggan"
  model.progressive = "none"
  model.progressive_input = "none"
  model.embedding_type = "positional"
  model.scale_by_sigma = False
  model.centered = True
  config.training.reduce_mean = True
  config.training.batch_size = 64
  config.training.n_iters = 20000
  config.training.n_jitted_steps = 10
  config.training.log_freq = 100
  config.training.snapshot_freq = 2000
  config.optim.lr = 1e-3
  config.optim.warmup = 100
  config.optim.decay_steps = 2000  # the last 2000 steps: lr linearly to 0
  config.sampling.num_steps = 500
  config.sampling.num_samples = 64
  config.sampling.batch_size = 64
  return config
