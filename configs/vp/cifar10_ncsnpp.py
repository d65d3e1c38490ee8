"""NCSN++ (positional embedding) on CIFAR-10 with the discrete DDPM loss (VP), reverse-diffusion sampling.

python -m score_sde.main --config configs/vp/cifar10_ncsnpp.py --workdir runs/vp_cifar10_ncsnpp
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("cifar10")
  pc.set_sde(config, "vpsde", continuous=False)
  config.sampling.predictor = "reverse_diffusion"
  pc.set_network(config, "cifar10_ncsnpp_continuous_vp")
  return config
