"""Shared pieces of the paper's configs (the 2021 score_sde release), imported by the files under
configs/vp, configs/ve and configs/subvp.

A paper config is three choices on top of `score_sde.config_defaults`:
  1. the data set and its training schedule (`dataset_config`): batch size, iterations, the VE
     sigma_max and number of noise scales, the corrector's signal-to-noise ratio, dropout;
  2. the SDE and the loss (`set_sde`): continuous denoising score matching, or the discrete SMLD
     (VE) / DDPM (VP) objectives of the paper's Appendix;
  3. the network (`set_network`): one of `score_sde.models.presets.PRESETS`, whose parameter
     counts are checked against the reference implementation.

It lives in the package (like `score_sde.config_defaults`) so a config file, which --config loads
by file path, imports it as `from score_sde import paper_configs as pc` from any working directory.
"""

from typing import Optional

import ml_collections

from score_sde.config_defaults import get_default_config
from score_sde.models.presets import PRESETS

# Per data set: what the release's default_{cifar10,celeba,lsun}_configs.py and the 1024 px
# CelebA-HQ / FFHQ configs set. `snr` is the Langevin corrector's signal-to-noise ratio.
DATASETS = {
  "cifar10": dict(
    data="cifar10",
    image_size=32,
    batch_size=128,
    n_iters=1_300_000,
    n_jitted_steps=5,
    sigma_max=50.0,
    num_scales=1000,
    snr=0.16,
    dropout=0.1,
    eval_batch_size=1024,
  ),
  "celeba": dict(
    data="celeba",
    image_size=64,
    batch_size=128,
    n_iters=1_300_000,
    n_jitted_steps=5,
    sigma_max=90.0,
    num_scales=1000,
    snr=0.17,
    dropout=0.1,
    eval_batch_size=1024,
  ),
  "lsun_bedroom": dict(
    data="lsun_bedroom",
    image_size=256,
    batch_size=64,
    n_iters=2_400_000,
    n_jitted_steps=5,
    sigma_max=378.0,
    num_scales=2000,
    snr=0.075,
    dropout=0.0,
    eval_batch_size=512,
  ),
  "lsun_church_outdoor": dict(
    data="lsun_church_outdoor",
    image_size=256,
    batch_size=64,
    n_iters=2_400_000,
    n_jitted_steps=5,
    sigma_max=378.0,
    num_scales=2000,
    snr=0.075,
    dropout=0.0,
    eval_batch_size=512,
  ),
  # CelebA-HQ / FFHQ at 256 px used the LSUN defaults; at 1024 px their own (batch 8, sigma_max 1348).
  "celebahq_256": dict(
    data="celebahq",
    image_size=256,
    batch_size=64,
    n_iters=2_400_000,
    n_jitted_steps=5,
    sigma_max=348.0,
    num_scales=2000,
    snr=0.075,
    dropout=0.0,
    eval_batch_size=512,
  ),
  "ffhq_256": dict(
    data="ffhq",
    image_size=256,
    batch_size=64,
    n_iters=2_400_000,
    n_jitted_steps=5,
    sigma_max=348.0,
    num_scales=2000,
    snr=0.075,
    dropout=0.0,
    eval_batch_size=512,
  ),
  "celebahq_1024": dict(
    data="celebahq",
    image_size=1024,
    batch_size=8,
    n_iters=2_400_000,
    n_jitted_steps=1,
    sigma_max=1348.0,
    num_scales=2000,
    snr=0.15,
    dropout=0.0,
    eval_batch_size=1024,
  ),
  "ffhq_1024": dict(
    data="ffhq",
    image_size=1024,
    batch_size=8,
    n_iters=2_400_000,
    n_jitted_steps=1,
    sigma_max=1348.0,
    num_scales=2000,
    snr=0.15,
    dropout=0.0,
    eval_batch_size=1024,
  ),
}


def dataset_config(dataset: str) -> ml_collections.ConfigDict:
  """Defaults + the release's data, training, SDE-scale and evaluation settings for `dataset`."""
  d = DATASETS[dataset]
  config = get_default_config()
  data = config.data
  data.name = d["data"]
  data.image_size = d["image_size"]
  data.num_channels = 3
  data.random_flip = True
  data.uniform_dequantization = False

  config.sde.sigma_min = 0.01
  config.sde.sigma_max = d["sigma_max"]
  config.sde.num_scales = d["num_scales"]
  config.sde.beta_min = 0.1
  config.sde.beta_max = 20.0

  tr = config.training
  tr.batch_size = d["batch_size"]
  tr.n_iters = d["n_iters"]
  tr.n_jitted_steps = d["n_jitted_steps"]
  tr.log_freq = 50
  tr.snapshot_freq = 10_000  # the release's preemption checkpoints (snapshots kept every 50k there)
  tr.keep_checkpoints = 5
  tr.eps = 1e-5
  tr.ema_rate = 0.999
  # Sampling 50,000 images is an evaluation job of its own (--mode sample / eval), not a step of training.
  tr.sample_at_end = False

  optim = config.optim
  optim.optimizer = "adam"
  optim.lr = 2e-4
  optim.beta1 = 0.9
  optim.eps = 1e-8
  optim.warmup = 5000
  optim.grad_clip = 1.0

  s = config.sampling
  s.method = "pc"
  s.snr = d["snr"]
  s.n_steps_each = 1
  s.noise_removal = True
  s.probability_flow = False
  s.eps = 1e-3  # set_sde: 1e-5 for VE
  s.num_samples = 50_000  # the release's evaluation sample count (FID / IS)
  s.batch_size = d["eval_batch_size"]

  config.eval.batch_size = d["eval_batch_size"]
  config.eval.num_samples = 50_000  # FID / IS, drawn in rounds of eval.batch_size
  config.eval.enable_bpd = False
  config.eval.bpd_dataset = "test"
  # Network dropout of the data set; set_network reads it back.
  config.model.dropout = d["dropout"]
  return config


def set_sde(
  config: ml_collections.ConfigDict, sde: str, continuous: bool, reduce_mean: Optional[bool] = None
):
  """SDE, objective, sampler and data centring as the release paired them.

  VP / sub-VP: data in [-1, 1], continuous DSM or DDPM's discrete loss (reduce_mean), predictor
  euler_maruyama (continuous) or ancestral_sampling (discrete), no corrector, sampling to t = 1e-3.
  VE: data in [0, 1] (the network maps x -> 2x - 1), continuous DSM or NCSN's discrete SMLD loss
  (half the sum over dimensions), predictor reverse_diffusion with the Langevin corrector (the
  paper's PC sampler), sampling to t = 1e-5.
  """
  config.sde.name = sde
  vp_like = sde in ("vpsde", "subvpsde")
  if not continuous:
    if sde == "subvpsde":
      raise ValueError("the sub-VP SDE has no discrete objective in the release")
    config.training.loss = "ddpm" if sde == "vpsde" else "smld"
  else:
    config.training.loss = "dsm"
  config.training.reduce_mean = vp_like if reduce_mean is None else reduce_mean
  config.data.centered = vp_like
  s = config.sampling
  # The release samples VE down to t = 1e-5 (sigma(1e-5) = sigma_min (sigma_max / sigma_min)^1e-5,
  # within 0.01% of sigma_min) and VP / sub-VP down to 1e-3.
  s.eps = 1e-3 if vp_like else 1e-5
  if vp_like:
    s.predictor = "euler_maruyama" if continuous else "ancestral_sampling"
    s.corrector = "none"
    config.training.ema_rate = 0.9999
  else:
    s.predictor = "reverse_diffusion"
    s.corrector = "langevin"
  return config


def set_network(config: ml_collections.ConfigDict, preset: str, **overrides):
  """config.model := network of `PRESETS[preset]`, with the data set's dropout and centring and
  `overrides` (e.g. embedding_type='positional'); every hyperparameter is then an explicit field."""
  p = PRESETS[preset]
  hparams = dict(p["hparams"])
  if "dropout" in hparams:
    hparams["dropout"] = config.model.dropout
  hparams.update(overrides)
  model = ml_collections.ConfigDict()
  model.name = p["model"]
  model.target = "auto"
  model.preconditioning = config.model.preconditioning  # 'none': the 2021 networks as they are
  model.sigma_data = config.model.sigma_data
  for k, v in hparams.items():
    setattr(model, k, v)
  # The network maps [0, 1] inputs to [-1, 1] itself exactly when the data are not centred: a
  # reference, so --config.data.centered=... moves both.
  model.centered = config.data.get_ref("centered")
  config.model = model
  return config


def set_refinenet(config: ml_collections.ConfigDict, name: str, scale_by_sigma: bool):
  """NCSN ('ncsn', noise-conditional norms over the SDE's num_scales levels) or NCSNv2 ('ncsnv2',
  unconditional RefineNet divided by sigma): nf 128, InstanceNorm++, ELU, bilinear upsampling, as
  the release. Both train with the SMLD loss, Adam without warm-up or clipping, and sample with
  annealed Langevin dynamics (no predictor)."""
  model = ml_collections.ConfigDict()
  model.name = name
  model.target = "auto"
  model.preconditioning = config.model.preconditioning  # 'none': the 2021 networks as they are
  model.sigma_data = config.model.sigma_data
  model.nf = 128
  model.normalization = "InstanceNorm++"
  model.nonlinearity = "elu"
  model.interpolation = "bilinear"
  model.scale_by_sigma = scale_by_sigma
  model.centered = config.data.get_ref("centered")
  if name == "ncsn":
    # The conditional norms hold one row per SDE noise level: references, so that overriding
    # --config.sde.num_scales (or the sigmas) changes the network with it.
    model.sigma_min = config.sde.get_ref("sigma_min")
    model.sigma_max = config.sde.get_ref("sigma_max")
    model.num_scales = config.sde.get_ref("num_scales")
  config.model = model
  config.optim.warmup = 0
  config.optim.grad_clip = -1.0
  config.sampling.predictor = "none"
  config.sampling.corrector = "ald"
  return config
