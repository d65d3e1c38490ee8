"""NCSNv2 on CIFAR-10 (Song & Ermon 2020): L = 232 levels from 50 to 0.01, output divided by sigma; SMLD loss, annealed Langevin sampling.

python -m score_sde.main --config configs/ve/ncsnv2/cifar10.py --workdir runs/ve_ncsnv2_cifar10
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("cifar10")
  config.sde.num_scales = 232
  config.sde.sigma_max = 50.0
  pc.set_sde(config, "vesde", continuous=False)
  config.training.ema_rate = 0.999
  config.optim.lr = 1e-4
  pc.set_refinenet(config, "ncsnv2", scale_by_sigma=True)
  config.sampling.n_steps_each = 5
  config.sampling.snr = 0.176
  return config
