"""DDPM++ (the `ncsnpp` network: BigGAN residual blocks, no FIR, no pyramids, positional
embedding of 999 t) at width 16 on scikit-learn's 8x8 digits, VP SDE, continuous DSM (CPU).

6000 steps (about 5.8 minutes on 2 unloaded cores at 0.058 s/step) with the EMA warm-up. Digits
FD of 180 samples, mean over sampling seeds 0, 1, 2, below that of the 180 held-out digits
(7.82): ODE Heun 25 7.55, EDM Heun 18 7.00, DDIM 50 7.22 (4000 steps: 7.90, 7.30, 7.57; the
default Euler-Maruyama 500 gave 7.14 at 4000 steps with one seed;
experiments/results/reproduce_digits.md).

    python -m score_sde.main --config configs/digits/vp_ddpmpp.py --workdir runs/digits_vp_ddpmpp
"""

from score_sde.config_defaults import get_default_config


def get_config():
  config = get_default_config()
  config.data.name = "digits"
  config.data.image_size = 8
  config.data.num_channels = 1
  config.data.uniform_dequantization = True
  config.data.centered = True
  config.sde.name = "vpsde"
  config.model.name = "ncsnpp"
  model = config.model
  model.nf = 16
  model.ch_mult = (1, 2)
  model.num_res_blocks = 1
  model.attn_resolutions = (4,)
  model.dropout = 0.0
  model.fir = False
  model.resblock_type = "biggan"
  model.progressive = "none"
  model.progressive_input = "none"
  model.embedding_type = "positional"
  model.scale_by_sigma = False
  model.centered = True
  config.training.reduce_mean = True
  config.training.batch_size = 64
  config.training.n_iters = 6000
  config.training.n_jitted_steps = 10
  config.training.log_freq = 100
  config.training.snapshot_freq = 500
  config.optim.lr = 1e-3
  config.optim.warmup = 100
  config.sampling.num_steps = 500
  config.sampling.num_samples = 64
  config.sampling.batch_size = 64
  return config
