"""NCSN++ (cont.) on CIFAR-10 with the VP SDE: FIR resampling, residual input pyramid (62.7M params).

python -m score_sde.main --config configs/vp/cifar10_ncsnpp_continuous.py --workdir runs/vp_cifar10_ncsnpp_continuous
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("cifar10")
  pc.set_sde(config, "vpsde", continuous=True)
  pc.set_network(config, "cifar10_ncsnpp_continuous_vp")
  return config
