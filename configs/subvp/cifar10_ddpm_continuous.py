"""DDPM network on CIFAR-10 with the sub-VP SDE. Continuous DSM, Euler-Maruyama sampling.

python -m score_sde.main --config configs/subvp/cifar10_ddpm_continuous.py --workdir runs/subvp_cifar10_ddpm_continuous
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("cifar10")
  pc.set_sde(config, "subvpsde", continuous=True)
  pc.set_network(config, "cifar10_ddpm")
  return config
