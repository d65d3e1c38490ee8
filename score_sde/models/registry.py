"""Registry of score networks.

Every network is a `flax.linen.Module` whose dataclass fields are its hyperparameters and
whose call is `model(x, noise_label, train=False) -> array shaped like x`:
  x: [B, H, W, C] images (NHWC) or [B, D] vectors;
  noise_label: [B], the conditioning label chosen by `models.utils.noise_label` (999 t for
    VP-type SDEs, sigma(t) for continuous VE, the int32 level index for discrete VE; see
    `models.noise_levels` for the rule and the sigma table of the networks that need one);
  train: enables dropout (rng collection 'dropout').
"""

import dataclasses
from typing import Any, Dict, Mapping

from score_sde.registry import lookup, register

MODELS: Dict[str, Any] = {}


def register_model(name: str):
  """Class decorator: `@register_model('ncsnpp') class NCSNpp(nn.Module): ...`."""
  return register(MODELS, name)


def get_model_class(name: str):
  return lookup(MODELS, name, "model")


def build_model(name: str, kwargs: Mapping[str, Any]):
  """Instantiates network `name` from hyperparameters; unknown keys fail with the valid ones."""
  cls = get_model_class(name)
  fields = {f.name for f in dataclasses.fields(cls) if f.init and f.name not in ("parent", "name")}
  unknown = sorted(set(kwargs) - fields)
  if unknown:
    raise ValueError(f"model {name!r} has no hyperparameters {unknown}; valid: {sorted(fields)}")
  return cls(**dict(kwargs))
