"""DDPM network on CIFAR-10 with the continuous VP SDE objective, Euler-Maruyama sampling.

python -m score_sde.main --config configs/vp/cifar10_ddpm_continuous.py --workdir runs/vp_cifar10_ddpm_continuous
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("cifar10")
  pc.set_sde(config, "vpsde", continuous=True)
  pc.set_network(config, "cifar10_ddpm")
  return config
