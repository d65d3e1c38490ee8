"""Classifier-free guidance on the 2-D eight-Gaussians ring: a label-conditional MLP (the mixture
component is the label, dropped with probability training.label_dropout), sampled with guidance
weight w = guidance_scale (CPU, ~2 min).

    python -m score_sde.main --config configs/toy/vp_eight_gaussians_cfg.py --workdir runs/toy_cfg
    python -m score_sde.main --config configs/toy/vp_eight_gaussians_cfg.py --workdir runs/toy_cfg \
        --mode sample --config.sampling.guidance_scale=2.0 --config.sampling.classes=1,5
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
  config.model.num_classes = 8
  config.training.label_dropout = 0.1
  config.training.sample_at_end = False
  config.sampling.condition = "cfg"
  config.sampling.guidance_scale = 1.0
  config.sampling.num_samples = 800
  config.sampling.batch_size = 800
  return config
