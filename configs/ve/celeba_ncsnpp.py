"""NCSN++ (positional embedding) on CelebA 64x64 with the discrete SMLD loss (VE, sigma_max 90).

    python -m score_sde.main --config configs/ve/celeba_ncsnpp.py --workdir runs/ve_celeba_ncsnpp
"""
import os
import sys

_CONFIGS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _CONFIGS not in sys.path:
  sys.path.append(_CONFIGS)
import paper_common as pc  # noqa: E402


def get_config():
  config = pc.dataset_config("celeba")
  pc.set_sde(config, "vesde", continuous=False)
  pc.set_network(config, "cifar10_ncsnpp_continuous", embedding_type="positional")
  return config
