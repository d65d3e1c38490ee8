"""NCSN++ (positional embedding) on CelebA 64x64 with the discrete SMLD loss (VE, sigma_max 90).

python -m score_sde.main --config configs/ve/celeba_ncsnpp.py --workdir runs/ve_celeba_ncsnpp
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("celeba")
  pc.set_sde(config, "vesde", continuous=False)
  pc.set_network(config, "cifar10_ncsnpp_continuous", embedding_type="positional")
  return config
