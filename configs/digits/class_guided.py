"""Class-conditional digits by classifier guidance (paper section 5): the unconditional VP model
of vp_small_unet.py plus a small noise-conditional Wide ResNet trained on digits noised by the
same SDE (CPU minutes each).

    python -m score_sde.main --config configs/digits/vp_small_unet.py --workdir runs/digits_vp
    python -m score_sde.train_classifier --config configs/digits/class_guided.py --workdir runs/digits_vp
    python -m score_sde.main --config configs/digits/class_guided.py --workdir runs/digits_vp --mode sample

The last command writes runs/digits_vp/controllable_<step>_class.png: one row per digit.
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
  c = config.classifier
  c.model.name = "wideresnet"
  c.model.num_classes = 10
  c.model.blocks_per_group = 1  # WRN-10-2: the CIFAR-10 WRN-28-10 shrunk for 16x16 digits
  c.model.channel_multiplier = 2
  c.model.embedding_type = "positional"  # VP: the label is 999 t
  c.model.temb_dim = 128
  c.batch_size = 128
  c.n_iters = 2000
  c.n_jitted_steps = 20
  c.log_freq = 200
  c.snapshot_freq = 1000
  c.lr = 1e-3
  config.sampling.condition = "class"
  config.sampling.guidance_scale = 1.0
  config.sampling.num_samples = 80
  config.sampling.batch_size = 80
  config.sampling.num_steps = 500
  return config
