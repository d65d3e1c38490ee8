"""DDPM++ (cont.) on CIFAR-10: VP SDE, continuous DSM, Euler-Maruyama sampling (61.8M params).

python -m score_sde.main --config configs/vp/cifar10_ddpmpp_continuous.py --workdir runs/vp_cifar10_ddpmpp_continuous
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("cifar10")
  pc.set_sde(config, "vpsde", continuous=True)
  pc.set_network(config, "cifar10_ddpmpp_continuous")
  return config
