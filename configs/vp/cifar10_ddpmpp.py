"""DDPM++ on CIFAR-10 with the discrete DDPM loss (VP), ancestral sampling.

python -m score_sde.main --config configs/vp/cifar10_ddpmpp.py --workdir runs/vp_cifar10_ddpmpp
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("cifar10")
  pc.set_sde(config, "vpsde", continuous=False)
  pc.set_network(config, "cifar10_ddpmpp_continuous")
  return config
