"""NCSNv2 on CelebA 64x64: L = 500 levels from 90 to 0.01; SMLD loss, annealed Langevin sampling.

python -m score_sde.main --config configs/ve/ncsnv2/celeba.py --workdir runs/ve_ncsnv2_celeba
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("celeba")
  config.sde.num_scales = 500
  config.sde.sigma_max = 90.0
  pc.set_sde(config, "vesde", continuous=False)
  config.training.ema_rate = 0.999
  config.optim.lr = 1e-4
  pc.set_refinenet(config, "ncsnv2", scale_by_sigma=True)
  config.sampling.n_steps_each = 5
  config.sampling.snr = 0.128
  return config
