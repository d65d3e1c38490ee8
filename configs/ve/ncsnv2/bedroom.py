"""NCSNv2 on LSUN bedroom 128x128: L = 1086 levels from 190 to 0.01, the 128 px RefineNet; SMLD loss, annealed Langevin sampling.

python -m score_sde.main --config configs/ve/ncsnv2/bedroom.py --workdir runs/ve_ncsnv2_bedroom
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("lsun_bedroom")
  config.data.image_size = 128
  config.training.batch_size = 128
  config.sde.num_scales = 1086
  config.sde.sigma_max = 190.0
  pc.set_sde(config, "vesde", continuous=False)
  config.training.ema_rate = 0.9999
  config.optim.lr = 1e-4
  pc.set_refinenet(config, "ncsnv2", scale_by_sigma=True)
  config.sampling.n_steps_each = 3
  config.sampling.snr = 0.095
  return config
