"""The paper's network hyperparameters (yang-song/score_sde configs), as plain dicts.

PRESETS[name] = {'model': registry name, 'image_size': H = W, 'num_channels': C,
                 'hparams': keyword arguments of the network class}.
`build_preset(name, **overrides)` instantiates one. `REFERENCE_PARAM_COUNTS[name]` is the parameter
count of the reference implementation for the same configuration.

`centered` mirrors the reference's data.centered: False means the reference fed images in
[0, 1] and the network itself maps x -> 2x - 1 (the VE configs); the VP configs feed [-1, 1].
"""

from typing import Any, Dict

from score_sde.models.registry import build_model
from score_sde.registry import lookup

_CIFAR = dict(image_size=32, num_channels=3)

# configs/vp/cifar10_ddpmpp_continuous.py: DDPM++ (cont.), VP.
_DDPMPP = dict(
  nf=128,
  ch_mult=(1, 2, 2, 2),
  num_res_blocks=4,
  attn_resolutions=(16,),
  dropout=0.1,
  resamp_with_conv=True,
  conditional=True,
  fir=False,
  fir_kernel=(1, 3, 3, 1),
  skip_rescale=True,
  resblock_type="biggan",
  progressive="none",
  progressive_input="none",
  progressive_combine="sum",
  init_scale=0.0,
  embedding_type="positional",
  fourier_scale=16.0,
  scale_by_sigma=False,
  centered=True,
  nonlinearity="swish",
)

# configs/vp/cifar10_ncsnpp_continuous.py: NCSN++ with the positional embedding, VP.
_NCSNPP_VP = dict(_DDPMPP, fir=True, progressive_input="residual")

# configs/ve/cifar10_ncsnpp_continuous.py: NCSN++ (cont.), VE: Fourier features of log sigma,
# output divided by sigma, data in [0, 1].
_NCSNPP_VE = dict(_NCSNPP_VP, embedding_type="fourier", scale_by_sigma=True, centered=False)

# configs/vp/ddpm/cifar10.py: DDPM.
_DDPM_CIFAR = dict(
  nf=128,
  ch_mult=(1, 2, 2, 2),
  num_res_blocks=2,
  attn_resolutions=(16,),
  dropout=0.1,
  resamp_with_conv=True,
  conditional=True,
  scale_by_sigma=False,
  centered=True,
  nonlinearity="swish",
)

# configs/vp/ddpm/church.py (and bedroom): DDPM at 256 x 256, LSUN defaults (dropout 0).
_DDPM_LSUN = dict(_DDPM_CIFAR, ch_mult=(1, 1, 2, 2, 4, 4), dropout=0.0)

# configs/ve/celebahq_256_ncsnpp_continuous.py: LSUN defaults (dropout 0, Fourier, uncentered).
_NCSNPP_CELEBAHQ256 = dict(
  _NCSNPP_VE,
  ch_mult=(1, 1, 2, 2, 2, 2, 2),
  num_res_blocks=2,
  dropout=0.0,
  progressive="output_skip",
  progressive_input="input_skip",
)

# configs/ve/ffhq_ncsnpp_continuous.py (FFHQ 1024).
_NCSNPP_FFHQ1024 = dict(
  _NCSNPP_CELEBAHQ256, nf=16, ch_mult=(1, 2, 4, 8, 16, 32, 32, 32), num_res_blocks=1
)

PRESETS: Dict[str, Dict[str, Any]] = {
  "cifar10_ddpm": dict(model="ddpm", **_CIFAR, hparams=_DDPM_CIFAR),
  "cifar10_ddpmpp_continuous": dict(model="ncsnpp", **_CIFAR, hparams=_DDPMPP),
  "cifar10_ddpmpp_deep_continuous": dict(
    model="ncsnpp", **_CIFAR, hparams=dict(_DDPMPP, num_res_blocks=8)
  ),
  "cifar10_ncsnpp_continuous_vp": dict(model="ncsnpp", **_CIFAR, hparams=_NCSNPP_VP),
  "cifar10_ncsnpp_deep_continuous_vp": dict(
    model="ncsnpp", **_CIFAR, hparams=dict(_NCSNPP_VP, num_res_blocks=8)
  ),
  "cifar10_ncsnpp_continuous": dict(model="ncsnpp", **_CIFAR, hparams=_NCSNPP_VE),
  "cifar10_ncsnpp_deep_continuous": dict(
    model="ncsnpp", **_CIFAR, hparams=dict(_NCSNPP_VE, num_res_blocks=8)
  ),
  "celebahq_256_ncsnpp_continuous": dict(
    model="ncsnpp", image_size=256, num_channels=3, hparams=_NCSNPP_CELEBAHQ256
  ),
  "ffhq_1024_ncsnpp_continuous": dict(
    model="ncsnpp", image_size=1024, num_channels=3, hparams=_NCSNPP_FFHQ1024
  ),
  "church_ddpm": dict(model="ddpm", image_size=256, num_channels=3, hparams=_DDPM_LSUN),
  "bedroom_ddpm": dict(model="ddpm", image_size=256, num_channels=3, hparams=_DDPM_LSUN),
}

# Parameter counts of the reference implementation (same configurations).
REFERENCE_PARAM_COUNTS: Dict[str, int] = {
  "cifar10_ddpm": 35_218_947,
  "cifar10_ddpmpp_continuous": 61_804_419,
  "cifar10_ddpmpp_deep_continuous": 106_632_579,
  "cifar10_ncsnpp_continuous_vp": 62_693_251,
  "cifar10_ncsnpp_deep_continuous_vp": 107_521_411,
  "cifar10_ncsnpp_continuous": 62_758_915,
  "cifar10_ncsnpp_deep_continuous": 107_587_075,
  "celebahq_256_ncsnpp_continuous": 65_574_549,
  "ffhq_1024_ncsnpp_continuous": 105_785_896,
  "church_ddpm": 111_569_923,
  "bedroom_ddpm": 111_569_923,
}


def build_preset(name: str, **overrides):
  """The network of preset `name`, with hyperparameters replaced by `overrides` (e.g. dtype, remat)."""
  preset = lookup(PRESETS, name, "model preset")
  return build_model(preset["model"], dict(preset["hparams"], **overrides))
