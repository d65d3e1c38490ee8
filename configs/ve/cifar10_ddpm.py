"""The DDPM network trained with NCSN's discrete SMLD loss on CIFAR-10 (VE), output divided by sigma.

python -m score_sde.main --config configs/ve/cifar10_ddpm.py --workdir runs/ve_cifar10_ddpm
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("cifar10")
  pc.set_sde(config, "vesde", continuous=False)
  pc.set_network(config, "cifar10_ddpm", scale_by_sigma=True)
  return config
