"""Noise-level embeddings shared by the networks.

positional: DDPM's sinusoidal embedding of the label (Vaswani et al. / Ho et al.): the level
  index k for discrete VE models, 999 t for VP (see `models.noise_levels` for the label rule);
fourier: random Fourier features of log sigma (Tancik et al.; NCSN++ for continuous VE).
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from score_sde.models.noise_levels import label_sigma


def timestep_embedding(labels: jax.Array, dim: int, max_positions: int = 10000) -> jax.Array:
  """[B] -> [B, dim]: concat(sin(l w_k), cos(l w_k)), w_k = max_positions^(-k / (dim/2 - 1))."""
  assert labels.ndim == 1, labels.shape
  half = dim // 2
  freqs = jnp.exp(-math.log(max_positions) / (half - 1) * jnp.arange(half, dtype=jnp.float32))
  args = labels.astype(jnp.float32)[:, None] * freqs[None, :]
  emb = jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=1)
  if dim % 2 == 1:
    emb = jnp.pad(emb, [[0, 0], [0, 1]])
  return emb


class GaussianFourierProjection(nn.Module):
  """[B] -> [B, 2 embedding_size]: concat(sin(2 pi x W), cos(2 pi x W)), W ~ N(0, scale^2) fixed."""

  embedding_size: int = 256
  scale: float = 1.0

  @nn.compact
  def __call__(self, x):
    # W is stored as a parameter (for checkpoint compatibility) but never trained.
    W = self.param("W", jax.nn.initializers.normal(stddev=self.scale), (self.embedding_size,))
    W = jax.lax.stop_gradient(W)
    proj = x[:, None] * W[None, :] * 2 * jnp.pi
    return jnp.concatenate([jnp.sin(proj), jnp.cos(proj)], axis=-1)


def embed_noise_label(
  labels: jax.Array,
  kind: str,
  dim: int,
  fourier_scale: float = 16.0,
  sigma_min=None,
  sigma_max=None,
  num_scales=None,
):
  """[B] -> [B, dim]: 'positional' embeds the label itself, 'fourier' log sigma, where sigma is
  the float label or, for an integer level label, the table entry of (sigma_min, sigma_max,
  num_scales) (`noise_levels.label_sigma`)."""
  if kind == "fourier":
    sigma = label_sigma(labels, sigma_min, sigma_max, num_scales)
    return GaussianFourierProjection(embedding_size=dim // 2, scale=fourier_scale)(jnp.log(sigma))
  if kind == "positional":
    return timestep_embedding(labels, dim)
  raise ValueError(f"unknown embedding_type {kind!r}; choose from ['fourier', 'positional']")


def class_labels(labels, num_classes: int, batch: int) -> jax.Array:
  """The class index fed to a label-conditional network, [B] int32.

  `labels` None (or a network without classes) means "no label": the extra index num_classes,
  which classifier-free guidance training uses for its dropped labels. A network built with
  num_classes = 0 refuses labels."""
  if num_classes <= 0:
    if labels is not None:
      raise ValueError("labels given to a network built without classes: set model.num_classes")
    return None
  if labels is None:
    return jnp.full((batch,), num_classes, jnp.int32)
  return jnp.asarray(labels, jnp.int32)


def add_class_embedding(emb: jax.Array, labels, num_classes: int, dtype=jnp.float32) -> jax.Array:
  """emb + E[labels] with a learned table E: [num_classes + 1, dim] (row num_classes: no label);
  emb: [B, dim]. Unchanged (no parameters) when num_classes = 0."""
  labels = class_labels(labels, num_classes, emb.shape[0])
  if labels is None:
    return emb
  table = nn.Embed(num_classes + 1, emb.shape[-1], dtype=dtype, name="class_embedding")
  return emb + table(labels).astype(emb.dtype)


def class_channels(x: jax.Array, labels, num_classes: int, dim: int = 4) -> jax.Array:
  """x: [B, H, W, C] with `dim` channels of a learned class embedding appended (constant over
  the image): class conditioning for the RefineNets (NCSN, NCSNv2), which have no time embedding
  to join; they return the first C output channels. Unchanged when num_classes = 0."""
  labels = class_labels(labels, num_classes, x.shape[0])
  if labels is None:
    return x
  e = nn.Embed(num_classes + 1, dim, name="class_embedding")(labels).astype(x.dtype)
  return jnp.concatenate([x, jnp.broadcast_to(e[:, None, None, :], x.shape[:3] + (dim,))], -1)
