"""DDPM++ deep (cont.) on CIFAR-10 with the sub-VP SDE. Continuous DSM, Euler-Maruyama sampling.

python -m score_sde.main --config configs/subvp/cifar10_ddpmpp_deep_continuous.py --workdir runs/subvp_cifar10_ddpmpp_deep_continuous
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("cifar10")
  config.training.n_iters = 950_000
  pc.set_sde(config, "subvpsde", continuous=True)
  pc.set_network(config, "cifar10_ddpmpp_deep_continuous")
  return config
