"""DDPM on LSUN church_outdoor 256x256 (Ho et al. 2020): VP SDE with N = 1000, discrete DDPM loss, lr 2e-5 (111.6M params).

    python -m score_sde.main --config configs/vp/church_ddpm.py --workdir runs/vp_church_ddpm
"""
import os
import sys

_CONFIGS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _CONFIGS not in sys.path:
  sys.path.append(_CONFIGS)
import paper_common as pc  # noqa: E402


def get_config():
  config = pc.dataset_config("lsun_church_outdoor")
  config.sde.num_scales = 1000
  config.optim.lr = 2e-5
  pc.set_sde(config, "vpsde", continuous=False)
  pc.set_network(config, "church_ddpm")
  return config
