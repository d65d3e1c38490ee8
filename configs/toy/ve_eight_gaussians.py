"""VE SDE on the eight-Gaussians ring: Fourier embedding of log sigma and a score scaled by 1/sigma, as NCSN++.

python -m score_sde.main --config configs/toy/ve_eight_gaussians.py --workdir runs/toy_ve
"""

from score_sde.config_defaults import get_default_config


def get_config():
  config = get_default_config()
  config.data.name = "eight_gaussians"
  config.sde.name = "vesde"
  config.sde.sigma_min = 0.01
  config.sde.sigma_max = 4.0  # about the largest distance between two data points (paper's rule)
  config.model.name = "mlp"
  config.model.hidden = 128
  config.model.num_layers = 3
  config.model.embedding_type = "fourier"
  config.model.scale_by_sigma = True
  config.training.batch_size = 256
  config.training.n_iters = 3000
  config.training.n_jitted_steps = 50
  config.training.log_freq = 500
  config.training.snapshot_freq = 1000
  config.training.reduce_mean = True
  config.optim.lr = 2e-3
  config.sampling.num_steps = 500
  config.sampling.eps = 1e-5
  config.sampling.num_samples = 2000
  config.sampling.batch_size = 2000
  return config
