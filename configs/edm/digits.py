"""EDM (Karras et al. 2022) on scikit-learn's digits at 16x16: the small U-Net of
configs/digits/vp_small_unet.py as F in D = c_skip x + c_out F(c_in x; c_noise), EDM loss, Heun
sampling on the EDM path (CPU, ~10 min).

    python -m score_sde.main --config configs/edm/digits.py --workdir runs/digits_edm
"""

from score_sde.config_defaults import get_default_config


def get_config():
  config = get_default_config()
  config.data.name = "digits"
  config.data.image_size = 16
  config.data.num_channels = 1
  config.data.centered = True
  config.data.uniform_dequantization = True
  config.sde.name = "edm"
  config.sde.sigma_max = 80.0
  config.model.name = "small_unet"
  config.model.nf = 32
  config.model.ch_mult = (1, 2)
  config.model.num_res_blocks = 1
  config.model.preconditioning = "edm"
  config.model.sigma_data = 0.6  # pixel std of the centred digits (0.63 measured)
  config.training.loss = "edm"
  config.training.batch_size = 64
  config.training.n_iters = 4000
  config.training.n_jitted_steps = 20
  config.training.log_freq = 200
  config.training.snapshot_freq = 1000
  config.training.reduce_mean = False
  config.optim.lr = 1e-3
  config.optim.warmup = 200
  s = config.sampling
  s.method = "edm_heun"
  s.num_steps = 18
  s.eps = 0.002  # sigma_min: the EDM path's time is sigma
  s.num_samples = 64
  s.batch_size = 64
  return config
