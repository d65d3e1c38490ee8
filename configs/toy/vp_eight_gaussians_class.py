"""Classifier guidance on the 2-D eight-Gaussians ring: the unconditional model of
vp_eight_gaussians.py plus a noise-conditional MLP classifier of the component (CPU, ~1 min).

    python -m score_sde.main --config configs/toy/vp_eight_gaussians.py --workdir runs/toy_vp
    python -m score_sde.train_classifier --config configs/toy/vp_eight_gaussians_class.py --workdir runs/toy_vp
    python -m score_sde.main --config configs/toy/vp_eight_gaussians_class.py --workdir runs/toy_vp \
        --mode sample --config.sampling.classes=0,3
"""

import importlib.util
import os


def _base():
  """The config this one extends, loaded from its file beside this one."""
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vp_eight_gaussians.py")
  spec = importlib.util.spec_from_file_location("vp_eight_gaussians", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def get_config():
  config = _base()
  c = config.classifier
  c.model.name = "mlp_classifier"
  c.model.num_classes = 8
  c.model.hidden = 128
  c.model.num_layers = 2
  c.batch_size = 256
  c.n_iters = 1000
  c.n_jitted_steps = 50
  c.log_freq = 200
  c.snapshot_freq = 500
  c.lr = 2e-3
  config.sampling.condition = "class"
  config.sampling.guidance_scale = 1.0
  config.sampling.num_samples = 800
  config.sampling.batch_size = 800
  return config
