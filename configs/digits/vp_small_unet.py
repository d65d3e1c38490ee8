"""VP SDE on scikit-learn's 8x8 digits resized to 16x16, small U-Net (CPU, ~36 min).

Not within 15 minutes: at 0.55 s/step on 2 unloaded cores, 4000 steps take about 36 minutes
(15 minutes: 1650 steps). At width 16 (--config.model.nf=16, 0.19 CPU-s a step) 4500 steps (about
14.5 minutes) give digits FD, mean over sampling seeds 0, 1, 2 (held-out digits 7.82): ODE Heun
25 9.18, EDM Heun 18 8.80, DDIM 50 8.89, Euler-Maruyama 500 (default) 7.07 (the
deterministic samplers not yet below;
experiments/results/reproduce_digits.md). The width stays 32: the controllable configs extend
this one and their numbers in the README were measured at width 32.

python -m score_sde.main --config configs/digits/vp_small_unet.py --workdir runs/digits_vp
"""

from score_sde.config_defaults import get_default_config


def get_config():
  config = get_default_config()
  config.data.name = "digits"
  config.data.image_size = 16
  config.data.num_channels = 1
  config.data.centered = True
  config.data.uniform_dequantization = True
  config.sde.name = "vpsde"
  config.model.name = "small_unet"
  config.model.nf = 32
  config.model.ch_mult = (1, 2)
  config.model.num_res_blocks = 1
  config.training.batch_size = 64
  config.training.n_iters = 4000
  config.training.n_jitted_steps = 20
  config.training.log_freq = 200
  config.training.snapshot_freq = 1000
  config.training.reduce_mean = False
  config.optim.lr = 1e-3
  config.optim.warmup = 200
  config.sampling.num_steps = 500
  config.sampling.num_samples = 64
  config.sampling.batch_size = 64
  return config
