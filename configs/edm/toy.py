"""EDM (Karras et al. 2022) on the 2-D eight-Gaussians ring: preconditioned MLP denoiser, EDM loss,
Heun sampling on the EDM path a = 1, s = t (~1-2 min on 2 CPU cores).

    python -m score_sde.main --config configs/edm/toy.py --workdir runs/toy_edm
"""

from score_sde.config_defaults import get_default_config


def get_config():
  config = get_default_config()
  config.data.name = "eight_gaussians"
  config.sde.name = "edm"
  config.sde.sigma_max = 80.0
  config.model.name = "mlp"
  config.model.hidden = 128
  config.model.num_layers = 3
  config.model.preconditioning = "edm"
  config.model.sigma_data = 1.0  # the ring's per-coordinate standard deviation
  config.training.loss = "edm"
  config.training.batch_size = 256
  config.training.n_iters = 3000
  config.training.n_jitted_steps = 50
  config.training.log_freq = 500
  config.training.snapshot_freq = 1000
  config.training.reduce_mean = True
  config.optim.lr = 2e-3
  s = config.sampling
  s.method = "edm_heun"
  s.num_steps = 18
  s.eps = 0.002  # sigma_min: the EDM path's time is sigma
  s.num_samples = 2000
  s.batch_size = 2000
  return config
