"""The DDPM network trained with NCSN's discrete SMLD loss on CIFAR-10 (VE), output divided by sigma.

    python -m score_sde.main --config configs/ve/cifar10_ddpm.py --workdir runs/ve_cifar10_ddpm
"""
import os
import sys

_CONFIGS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _CONFIGS not in sys.path:
  sys.path.append(_CONFIGS)
import paper_common as pc  # noqa: E402


def get_config():
  config = pc.dataset_config("cifar10")
  pc.set_sde(config, "vesde", continuous=False)
  pc.set_network(config, "cifar10_ddpm", scale_by_sigma=True)
  return config
