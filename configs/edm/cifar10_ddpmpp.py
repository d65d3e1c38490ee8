"""EDM's unconditional CIFAR-10 setup with the DDPM++ network (Karras et al. 2022, Table 2
"Ours", config F; NVlabs/edm train.py --arch=ddpmpp --precond=edm; 55.73M parameters here).

    python -m score_sde.main --config configs/edm/cifar10_ddpmpp.py --workdir runs/edm_cifar10_ddpmpp

As the paper: DDPM++ with 256 channels at every resolution (32, 16, 8; model_channels 128 x
channel_mult (2, 2, 2)), 4 residual blocks per resolution, attention at 16x16, dropout 0.13,
positional embedding of c_noise = ln(sigma) / 4, box resampling filter; EDM preconditioning with
sigma_data = 0.5 on data in [-1, 1]; ln sigma ~ N(-1.2, 1.2^2), lambda = 1 / c_out^2, loss summed
over pixels (half the sum here, the package's convention) and averaged over the batch; Adam
(0.9, 0.999, 1e-8), lr 1e-3 reached linearly over 10 Mimg, no gradient clipping; batch 512 for
200 Mimg; EMA half-life 0.5 Mimg; sampling with Heun's 2nd order method, 18 steps, rho = 7, sigma
from 80 to 0.002.
Differences: the paper's non-leaking augmentation (p = 0.12) is not implemented here, and its
last step goes to sigma = 0 with Euler (35 NFE) where ours ends at 0.002 with Heun (36 NFE).
"""

from score_sde import paper_configs as pc

BATCH = 512


def get_config():
  config = pc.dataset_config("cifar10")
  config.data.centered = True
  config.data.random_flip = False  # EDM: --xflip=False (flips only inside its augmentation)
  config.model.dropout = 0.13
  pc.set_network(config, "cifar10_ddpmpp_continuous", ch_mult=(2, 2, 2))
  config.model.preconditioning = "edm"
  config.model.sigma_data = 0.5
  config.sde.name = "edm"
  config.sde.sigma_max = 80.0

  tr = config.training
  tr.loss = "edm"
  tr.p_mean = -1.2
  tr.p_std = 1.2
  tr.reduce_mean = False
  tr.batch_size = BATCH
  tr.n_iters = 200_000_000 // BATCH  # 200 Mimg: 390,625 steps
  tr.n_jitted_steps = 5
  tr.snapshot_freq = 10_000
  tr.ema_rate = 0.5 ** (BATCH / 500_000)  # half-life of 0.5 Mimg: 0.99929

  o = config.optim
  o.optimizer = "adam"
  o.lr = 1e-3
  o.beta1, o.beta2, o.eps = 0.9, 0.999, 1e-8
  o.warmup = 10_000_000 // BATCH  # 10 Mimg
  o.grad_clip = 0.0

  s = config.sampling
  s.method = "edm_heun"
  s.num_steps = 18
  s.rho = 7.0
  s.eps = 0.002  # sigma_min: the EDM path's time is sigma
  s.s_churn = 0.0
  return config
