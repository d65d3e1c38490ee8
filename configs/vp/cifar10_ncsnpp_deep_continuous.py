"""NCSN++ deep (cont.) on CIFAR-10 with the VP SDE (107.5M params).

python -m score_sde.main --config configs/vp/cifar10_ncsnpp_deep_continuous.py --workdir runs/vp_cifar10_ncsnpp_deep_continuous
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("cifar10")
  config.training.n_iters = 950_000
  pc.set_sde(config, "vpsde", continuous=True)
  pc.set_network(config, "cifar10_ncsnpp_deep_continuous_vp")
  return config
