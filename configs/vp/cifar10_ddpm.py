"""DDPM (Ho et al. 2020) on CIFAR-10: VP SDE, discrete DDPM loss, ancestral sampling (35.2M params).

python -m score_sde.main --config configs/vp/cifar10_ddpm.py --workdir runs/vp_cifar10_ddpm
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("cifar10")
  pc.set_sde(config, "vpsde", continuous=False)
  pc.set_network(config, "cifar10_ddpm")
  return config
