"""NCSN++ (cont.) on CIFAR-10: VE SDE, Fourier features of log sigma, PC sampling (62.8M params).

python -m score_sde.main --config configs/ve/cifar10_ncsnpp_continuous.py --workdir runs/ve_cifar10_ncsnpp_continuous
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("cifar10")
  pc.set_sde(config, "vesde", continuous=True)
  pc.set_network(config, "cifar10_ncsnpp_continuous")
  return config
