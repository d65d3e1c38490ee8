"""Classifier-free guidance with EDM (Karras et al. 2022) on digits: the preconditioned small
U-Net of configs/edm/digits.py made label-conditional (class embedding, labels dropped with
probability training.label_dropout), sampled by EDM's Heun loop with guidance weight w.

    python -m score_sde.main --config configs/edm/digits_cfg.py --workdir runs/digits_edm_cfg
    python -m score_sde.main --config configs/edm/digits_cfg.py --workdir runs/digits_edm_cfg \\
        --mode sample --config.sampling.guidance_scale=2.0

The guided score is built from the denoiser, score = (D(x; sigma) - x) / sigma^2, exactly as
unconditional sampling builds it. Writes controllable_<step>_cfg.png: one row per digit.
"""

import importlib.util
import os


def _base():
  """The config this one extends, loaded from its file beside this one."""
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.py")
  spec = importlib.util.spec_from_file_location("edm_digits", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def get_config():
  config = _base()
  config.model.num_classes = 10
  config.training.label_dropout = 0.1
  config.training.sample_at_end = False
  config.sampling.condition = "cfg"
  config.sampling.guidance_scale = 1.0
  config.sampling.num_samples = 80
  config.sampling.batch_size = 80
  return config
