"""DDPM on CelebA-HQ 256x256 (Ho et al. 2020): VP SDE with N = 1000, discrete DDPM loss, lr 2e-5 (111.6M params).

python -m score_sde.main --config configs/vp/celebahq_ddpm.py --workdir runs/vp_celebahq_ddpm
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("celebahq_256")
  config.sde.num_scales = 1000
  config.optim.lr = 2e-5
  pc.set_sde(config, "vpsde", continuous=False)
  pc.set_network(config, "church_ddpm")
  return config
