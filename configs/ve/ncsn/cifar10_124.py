"""NCSN on CIFAR-10 with NCSNv2's techniques 1, 2, 4 (sigma_max 50, L = 232, Langevin step size); SMLD loss, annealed Langevin sampling.

python -m score_sde.main --config configs/ve/ncsn/cifar10_124.py --workdir runs/ve_ncsn_cifar10_124
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("cifar10")
  config.sde.num_scales = 232
  config.sde.sigma_max = 50.0
  pc.set_sde(config, "vesde", continuous=False)
  config.training.ema_rate = 0.0
  config.optim.lr = 1e-3
  pc.set_refinenet(config, "ncsn", scale_by_sigma=False)
  config.sampling.n_steps_each = 5
  config.sampling.snr = 0.176
  return config
