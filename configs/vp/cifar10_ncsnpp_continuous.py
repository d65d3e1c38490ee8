"""NCSN++ (cont.) on CIFAR-10 with the VP SDE: FIR resampling, residual input pyramid (62.7M params).

    python -m score_sde.main --config configs/vp/cifar10_ncsnpp_continuous.py --workdir runs/vp_cifar10_ncsnpp_continuous
"""
import os
import sys

_CONFIGS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _CONFIGS not in sys.path:
  sys.path.append(_CONFIGS)
import paper_common as pc  # noqa: E402


def get_config():
  config = pc.dataset_config("cifar10")
  pc.set_sde(config, "vpsde", continuous=True)
  pc.set_network(config, "cifar10_ncsnpp_continuous_vp")
  return config
