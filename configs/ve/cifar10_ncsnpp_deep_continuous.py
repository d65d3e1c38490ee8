"""NCSN++ deep (cont.) on CIFAR-10 with the VE SDE: the paper's best FID (107.6M params).

python -m score_sde.main --config configs/ve/cifar10_ncsnpp_deep_continuous.py --workdir runs/ve_cifar10_ncsnpp_deep_continuous
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("cifar10")
  config.training.n_iters = 950_000
  pc.set_sde(config, "vesde", continuous=True)
  pc.set_network(config, "cifar10_ncsnpp_deep_continuous")
  return config
