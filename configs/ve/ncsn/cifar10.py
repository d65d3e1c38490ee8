"""NCSN (v1) on CIFAR-10 as in Song & Ermon 2019: L = 10 noise levels from 1 to 0.01, no EMA; SMLD loss, annealed Langevin sampling.

python -m score_sde.main --config configs/ve/ncsn/cifar10.py --workdir runs/ve_ncsn_cifar10
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("cifar10")
  config.sde.num_scales = 10
  config.sde.sigma_max = 1.0
  pc.set_sde(config, "vesde", continuous=False)
  config.training.ema_rate = 0.0
  config.optim.lr = 1e-3
  pc.set_refinenet(config, "ncsn", scale_by_sigma=False)
  config.sampling.n_steps_each = 100
  config.sampling.snr = 0.316
  return config
