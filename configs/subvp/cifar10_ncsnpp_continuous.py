"""NCSN++ (cont., positional embedding) on CIFAR-10 with the sub-VP SDE. Continuous DSM, Euler-Maruyama sampling.

python -m score_sde.main --config configs/subvp/cifar10_ncsnpp_continuous.py --workdir runs/subvp_cifar10_ncsnpp_continuous
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("cifar10")
  pc.set_sde(config, "subvpsde", continuous=True)
  pc.set_network(config, "cifar10_ncsnpp_continuous_vp")
  return config
