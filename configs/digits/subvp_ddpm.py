"""The DDPM U-Net (Ho et al.) at width 32 on scikit-learn's 8x8 digits, sub-VP SDE, the network
under EDM's preconditioning and trained with EDM's loss.

Departure from the 2021 release (configs/subvp/cifar10_ddpm_continuous.py: the network predicts
eps, score = -F / std(t), trained by continuous DSM with t ~ U(eps, 1)): here the network is
EDM's F in D(x; sigma) = c_skip x + c_out F(c_in x; ln(sigma) / 4) (Karras et al. 2022, Table 1;
sigma_data 0.5, the data centred in [-1, 1]), trained with ln sigma ~ N(-1.2, 1.2^2) and weight
1 / c_out^2 (`training.loss = "edm"`); sampling still runs the sub-VP SDE / ODE (D acts on
x_t / a(t) with sigma = s(t) / a(t)). With the release's parametrization and objective the same
9000 steps gave digits FD 7.88 / 8.08 / 8.00 / 8.08 (default / ODE Heun 25 on the uniform t grid /
EDM Heun 18 / DDIM 50); `--config.model.preconditioning=none --config.training.loss=dsm` restores
it.

9000 steps, the last 1000 with the learning rate decaying linearly to 0 (`optim.decay_steps`):
12.2 minutes on 2 quiet cores at 0.081 s/step (0.091 in a second measurement;
experiments/results/benchmark_train_cpu_quiet.json; the width cannot shrink: GroupNorm(32) needs
channel counts that 32 divides). Digits FD of 180 samples, mean over sampling seeds 0-7 (held-out
digits: 7.82; their mean over 20 redrawn splits 7.14, experiments/heldout_fd_spread.py):
Euler-Maruyama 500 (default) 7.76, ODE Heun 25 (EDM's grid) 6.94, EDM Heun 18 6.96, DDIM 50 6.96
(experiments/results/digits_item7_subvp9000_edm.json, reproduce_digits.md).

    python -m score_sde.main --config configs/digits/subvp_ddpm.py --workdir runs/digits_subvp_ddpm
"""

from score_sde.config_defaults import get_default_config


def get_config():
  config = get_default_config()
  config.data.name = "digits"
  config.data.image_size = 8
  config.data.num_channels = 1
  config.data.uniform_dequantization = True
  config.data.centered = True
  config.sde.name = "subvpsde"
  config.model.name = "ddpm"
  model = config.model
  model.nf = 32  # GroupNorm(32) in every block of the DDPM network
  model.ch_mult = (1, 2)
  model.num_res_blocks = 1
  model.attn_resolutions = (4,)
  model.dropout = 0.0
  model.centered = True
  # EDM's preconditioning and loss (see the docstring).
  model.preconditioning = "edm"
  model.sigma_data = 0.5
  config.training.loss = "edm"
  config.training.reduce_mean = True
  config.training.batch_size = 64
  config.training.n_iters = 9000
  config.training.n_jitted_steps = 10
  config.training.log_freq = 100
  config.training.snapshot_freq = 1000
  config.optim.lr = 1e-3
  config.optim.warmup = 100
  config.optim.decay_steps = 1000
  config.sampling.num_steps = 500
  config.sampling.num_samples = 64
  config.sampling.batch_size = 64
  return config
