"""The DDPM U-Net (Ho et al.) at width 32 on scikit-learn's 8x8 digits, sub-VP SDE, continuous DSM.

4400 steps, the last 400 with the learning rate decaying linearly to 0 (about 14.7 minutes on 2
unloaded cores at 0.20 s/step; the width cannot shrink: GroupNorm(32) needs channel counts that
32 divides). Digits FD of 180 samples, mean over sampling seeds 0, 1, 2 (held-out digits: 7.82):
Euler-Maruyama 500 (default) 7.44 (6.15 6.34 9.83), ODE Heun 25 8.57, EDM Heun 18 8.20, DDIM 50
8.80 (each 6.3-6.9 with seed 0, 9.1-9.9 with seeds 1 and 2): the deterministic samplers are not
yet below the held-out digits in 15 minutes (experiments/results/reproduce_digits.md); over seeds
0-7: 9.24, 9.05, 9.35.

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
  config.training.n_iters = 4400
  config.training.n_jitted_steps = 10
  config.training.log_freq = 100
  config.training.snapshot_freq = 500
  config.optim.lr = 1e-3
  config.optim.warmup = 100
  config.optim.decay_steps = 400
  config.sampling.num_steps = 500
  config.sampling.num_samples = 64
  config.sampling.batch_size = 64
  return config
