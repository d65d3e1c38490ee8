"""DDPM on LSUN church_outdoor 256x256 (Ho et al. 2020): VP SDE with N = 1000, discrete DDPM loss, lr 2e-5 (111.6M params).

python -m score_sde.main --config configs/vp/church_ddpm.py --workdir runs/vp_church_ddpm
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("lsun_church_outdoor")
  config.sde.num_scales = 1000
  config.optim.lr = 2e-5
  pc.set_sde(config, "vpsde", continuous=False)
  pc.set_network(config, "church_ddpm")
  return config
