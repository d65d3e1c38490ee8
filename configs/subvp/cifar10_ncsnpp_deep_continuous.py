"""NCSN++ deep (cont.) on CIFAR-10 with the sub-VP SDE. Continuous DSM, Euler-Maruyama sampling.

    python -m score_sde.main --config configs/subvp/cifar10_ncsnpp_deep_continuous.py --workdir runs/subvp_cifar10_ncsnpp_deep_continuous
"""
import os
import sys

_CONFIGS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _CONFIGS not in sys.path:
  sys.path.append(_CONFIGS)
import paper_common as pc  # noqa: E402


def get_config():
  config = pc.dataset_config("cifar10")
  config.training.n_iters = 950_000
  pc.set_sde(config, "subvpsde", continuous=True)
  pc.set_network(config, "cifar10_ncsnpp_deep_continuous_vp")
  return config
