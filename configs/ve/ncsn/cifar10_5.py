"""NCSN (v1) on CIFAR-10 with NCSNv2's technique 5 only (EMA 0.999); SMLD loss, annealed Langevin sampling.

python -m score_sde.main --config configs/ve/ncsn/cifar10_5.py --workdir runs/ve_ncsn_cifar10_5
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("cifar10")
  config.sde.num_scales = 10
  config.sde.sigma_max = 1.0
  pc.set_sde(config, "vesde", continuous=False)
  config.training.ema_rate = 0.999
  config.optim.lr = 1e-3
  pc.set_refinenet(config, "ncsn", scale_by_sigma=False)
  config.sampling.n_steps_each = 100
  config.sampling.snr = 0.316
  return config
