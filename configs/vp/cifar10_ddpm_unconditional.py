"""DDPM network on CIFAR-10 without time conditioning (NCSNv2's technique 3 test), discrete DDPM loss.

python -m score_sde.main --config configs/vp/cifar10_ddpm_unconditional.py --workdir runs/vp_cifar10_ddpm_unconditional
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("cifar10")
  pc.set_sde(config, "vpsde", continuous=False)
  pc.set_network(config, "cifar10_ddpm", conditional=False)
  return config
