"""VP SDE on the 2-D eight-Gaussians ring, MLP score network; the README's main job (~2-3 min on 2 CPU cores).

python -m score_sde.main --config configs/toy/vp_eight_gaussians.py --workdir runs/toy_vp
"""

from score_sde.config_defaults import get_default_config


def get_config():
  config = get_default_config()
  config.data.name = "eight_gaussians"
  config.sde.name = "vpsde"
  config.model.name = "mlp"
  config.model.hidden = 128
  config.model.num_layers = 3
  config.training.batch_size = 256
  config.training.n_iters = 3000
  config.training.n_jitted_steps = 50
  config.training.log_freq = 500
  config.training.snapshot_freq = 1000
  config.training.reduce_mean = True
  config.optim.lr = 2e-3
  config.sampling.num_steps = 500
  config.sampling.num_samples = 2000
  config.sampling.batch_size = 2000
  return config
