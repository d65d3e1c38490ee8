"""Inpainting digits with the unconditional VP model of vp_small_unet.py (paper appendix I.2):
known pixels re-noised to the current time and imposed after every step of any sampler.

    python -m score_sde.main --config configs/digits/vp_small_unet.py --workdir runs/digits_vp
    python -m score_sde.main --config configs/digits/inpaint.py --workdir runs/digits_vp --mode sample
    ... --config.sampling.mask=center --config.sampling.inputs=my_digits.npz

Inputs default to test digits; masks: left_half | center | random_pixels, or an .npz ('mask') or
image file. Writes controllable_<step>_inpaint.png: inputs, masked inputs (unknown grey), samples.
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
  config.sampling.condition = "inpaint"
  config.sampling.mask = "left_half"
  config.sampling.corrector = "langevin"  # the corrector pulls the imputation toward p_t(x_u | x_k)
  config.sampling.snr = 0.16
  config.sampling.num_samples = 32
  config.sampling.batch_size = 32
  return config
