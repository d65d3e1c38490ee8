"""Classifier-free guidance on digits: a label-conditional small U-Net (class embedding, labels
dropped with probability training.label_dropout), sampled with guidance weight w (CPU minutes).

    python -m score_sde.main --config configs/digits/cfg_small_unet.py --workdir runs/digits_cfg
    python -m score_sde.main --config configs/digits/cfg_small_unet.py --workdir runs/digits_cfg \
        --mode sample --config.sampling.guidance_scale=2.0

w = 0 is the unconditional model, 1 the conditional one, > 1 amplified guidance. Writes
runs/digits_cfg/controllable_<step>_cfg.png: one row per digit.
"""

import importlib.util
import os


def _base():
  """The config this one extends, loaded from its file beside this one."""
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vp_small_unet.py")
  spec = importlib.util.spec_from_file_location("vp_small_unet", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def get_config():
  config = _base()
  # The width, depth, length, constant learning rate and parametrization (the release's eps
  # network and continuous DSM) this config's numbers (README) were measured with; vp_small_unet.py
  # itself is now narrower, deeper, longer, with dropout and EDM-preconditioned (its 15-minute
  # recipe).
  config.model.nf = 32
  config.model.ch_mult = (1, 2)
  config.model.dropout = 0.0
  config.training.n_iters = 4000
  config.optim.decay_steps = 0
  config.model.preconditioning = "none"
  config.training.loss = "dsm"
  config.model.num_classes = 10
  config.training.label_dropout = 0.1
  config.training.sample_at_end = False
  config.sampling.condition = "cfg"
  config.sampling.guidance_scale = 1.0
  config.sampling.cfg_form = "eps"
  config.sampling.num_samples = 80
  config.sampling.batch_size = 80
  return config
