"""VP SDE on scikit-learn's 8x8 digits resized to 16x16, small U-Net at width 16 (CPU).

8000 steps, the last 1000 with the learning rate decaying linearly to 0 (`optim.decay_steps`):
13.3 minutes on 2 quiet cores at 0.100 s/step
(experiments/results/benchmark_train_cpu_quiet.json; at width 32, 0.28 s/step, 15 minutes hold
about 3200 steps). Digits FD of 180 samples, mean over
sampling seeds 0-7: Euler-Maruyama 500 (default) 5.27, ODE Heun 25 6.89, EDM Heun 18 6.53,
DDIM 50 6.63. The bar at this size is 4.96, not 7.82: samples and reference both go through the
16 -> 8 shrinking, whose blur brings held-out digits taken the same way to 4.96
(experiments/results/reproduce_digits.md). The controllable configs that train their own model
(cfg_small_unet.py, colorize.py) keep width 32 and 4000 steps, with which their numbers were
measured.

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
  config.model.nf = 16
  config.model.ch_mult = (1, 2)
  config.model.num_res_blocks = 1
  config.training.batch_size = 64
  config.training.n_iters = 8000
  config.training.n_jitted_steps = 20
  config.training.log_freq = 200
  config.training.snapshot_freq = 1000
  config.training.reduce_mean = False
  config.optim.lr = 1e-3
  config.optim.warmup = 200
  config.optim.decay_steps = 1000
  config.sampling.num_steps = 500
  config.sampling.num_samples = 64
  config.sampling.batch_size = 64
  return config
