"""NCSN++ (positional embedding) on CIFAR-10 with NCSN's discrete SMLD loss (VE), PC sampling.

python -m score_sde.main --config configs/ve/cifar10_ncsnpp.py --workdir runs/ve_cifar10_ncsnpp
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("cifar10")
  pc.set_sde(config, "vesde", continuous=False)
  pc.set_network(config, "cifar10_ncsnpp_continuous", embedding_type="positional")
  return config
