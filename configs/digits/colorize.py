"""Colorizing digits (paper appendix I.2): a VP model of `digits_color` (each digit drawn in one
of six colours) samples RGB images whose grey level (the channel mean, one axis of an orthogonal
colour transform) is imposed at every step (CPU minutes).

    python -m score_sde.main --config configs/digits/colorize.py --workdir runs/digits_color
    python -m score_sde.main --config configs/digits/colorize.py --workdir runs/digits_color --mode sample

Inputs default to test digits (their grey level is kept); --config.sampling.inputs=FILE for
others. Writes controllable_<step>_colorize.png: originals, grey inputs, colorized samples.
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
  config.data.name = "digits_color"
  config.data.num_channels = 3
  config.training.sample_at_end = False
  config.sampling.condition = "colorize"
  config.sampling.num_samples = 32
  config.sampling.batch_size = 32
  return config
