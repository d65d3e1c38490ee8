"""A time-conditioned MLP for low-dimensional (toy) data."""

from typing import Optional

import flax.linen as nn
import jax

from score_sde.models.embeddings import add_class_embedding, embed_noise_label
from score_sde.models.noise_levels import label_sigma
from score_sde.models.registry import register_model
from score_sde.sde import bcast


@register_model("mlp")
class ScoreMLP(nn.Module):
  """x: [B, D], noise_label: [B] -> [B, D].

  h = Dense(x) + Dense(emb(label)), then `num_layers` residual blocks h += Dense(swish(Dense(h)))
  each re-injecting the embedding; linear read-out. With scale_by_sigma the output is divided by
  sigma (the float label, or sigma_k for an integer level label: `models.noise_levels`), as
  NCSN++ does.
  """

  hidden: int = 256
  num_layers: int = 3
  embedding_type: str = "positional"
  embedding_dim: int = 128
  fourier_scale: float = 16.0
  scale_by_sigma: bool = False
  num_classes: int = 0  # > 0: label-conditional (class embedding added to the time embedding)
  # The SMLD sigma table that integer level labels index (`models.noise_levels`).
  sigma_min: Optional[float] = None
  sigma_max: Optional[float] = None
  num_scales: Optional[int] = None

  @property
  def _table(self):
    return self.sigma_min, self.sigma_max, self.num_scales

  @nn.compact
  def __call__(self, x, noise_label, train: bool = False, labels=None):
    emb = embed_noise_label(
      noise_label, self.embedding_type, self.embedding_dim, self.fourier_scale, *self._table
    )
    emb = nn.Dense(self.hidden)(nn.swish(nn.Dense(self.hidden)(emb)))
    emb = add_class_embedding(emb, labels, self.num_classes)
    h = nn.Dense(self.hidden)(x) + emb
    for _ in range(self.num_layers):
      r = nn.Dense(self.hidden)(nn.swish(nn.LayerNorm()(h)))
      r = r + nn.Dense(self.hidden)(emb)
      h = h + nn.Dense(self.hidden)(nn.swish(r))
    out = nn.Dense(x.shape[-1], kernel_init=jax.nn.initializers.zeros)(nn.swish(h))
    if self.scale_by_sigma:
      out = out / bcast(label_sigma(noise_label, *self._table), out)
    return out
