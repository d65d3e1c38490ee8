"""DDPM++ on CIFAR-10 with the discrete DDPM loss (VP), ancestral sampling.

    python -m score_sde.main --config configs/vp/cifar10_ddpmpp.py --workdir runs/vp_cifar10_ddpmpp
"""
import os
import sys

_CONFIGS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _CONFIGS not in sys.path:
  sys.path.append(_CONFIGS)
import paper_common as pc  # noqa: E402


def get_config():
  config = pc.dataset_config("cifar10")
  pc.set_sde(config, "vpsde", continuous=False)
  pc.set_network(config, "cifar10_ddpmpp_continuous")
  return config
