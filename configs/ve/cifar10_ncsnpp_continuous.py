"""NCSN++ (cont.) on CIFAR-10: VE SDE, Fourier features of log sigma, PC sampling (62.8M params).

    python -m score_sde.main --config configs/ve/cifar10_ncsnpp_continuous.py --workdir runs/ve_cifar10_ncsnpp_continuous
"""
import os
import sys

_CONFIGS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _CONFIGS not in sys.path:
  sys.path.append(_CONFIGS)
import paper_common as pc  # noqa: E402


def get_config():
  config = pc.dataset_config("cifar10")
  pc.set_sde(config, "vesde", continuous=True)
  pc.set_network(config, "cifar10_ncsnpp_continuous")
  return config
