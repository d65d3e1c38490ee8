"""NCSN on CelebA with NCSNv2's techniques 1, 2, 4 (sigma_max 90, L = 500); SMLD loss, annealed Langevin sampling.

python -m score_sde.main --config configs/ve/ncsn/celeba_124.py --workdir runs/ve_ncsn_celeba_124
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("celeba")
  config.sde.num_scales = 500
  config.sde.sigma_max = 90.0
  pc.set_sde(config, "vesde", continuous=False)
  config.training.ema_rate = 0.0
  config.optim.lr = 1e-3
  pc.set_refinenet(config, "ncsn", scale_by_sigma=False)
  config.sampling.n_steps_each = 5
  config.sampling.snr = 0.128
  return config
