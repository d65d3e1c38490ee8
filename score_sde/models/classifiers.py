"""Noise-conditional classifiers p_t(y | x_t) for classifier guidance (paper appendix I.1).

Every classifier is a `flax.linen.Module` called as `clf(x, noise_label, train=False) -> logits`
with x: [B, H, W, C] (or [B, D] for the MLP), noise_label: [B] the same conditioning scalar the
score network of that SDE receives (`LinearSDE.noise_label`: 999 t for VP-type SDEs, sigma(t)
for VE), and logits: [B, num_classes].

`wideresnet`: the paper's classifier, a Wide ResNet (Zagoruyko & Komodakis 2016) whose blocks
receive a noise-level embedding: WRN-28-10 for CIFAR-10 (blocks_per_group 4, widening 10);
pre-activation blocks with GroupNorm + ReLU, the embedding added after the first convolution of
every block, per-image standardisation of the input, global average pooling, a linear head.
`mlp_classifier`: the same idea for vectors (2-D toys).
"""

from typing import Any, Dict

import flax.linen as nn
import jax.numpy as jnp

from score_sde.models.embeddings import embed_noise_label
from score_sde.registry import lookup, register

CLASSIFIERS: Dict[str, Any] = {}


def register_classifier(name: str):
  return register(CLASSIFIERS, name)


def build_classifier(name: str, kwargs):
  """Instantiates classifier `name` from hyperparameters; unknown keys fail with the valid ones."""
  import dataclasses

  cls = lookup(CLASSIFIERS, name, "classifier")
  fields = {f.name for f in dataclasses.fields(cls) if f.init and f.name not in ("parent", "name")}
  unknown = sorted(set(kwargs) - fields)
  if unknown:
    raise ValueError(
      f"classifier {name!r} has no hyperparameters {unknown}; valid: {sorted(fields)}"
    )
  return cls(**dict(kwargs))


def _norm_relu(x):
  # GroupNorm with groups of 4 channels, at most 32 groups; statistics per sample, so the
  # classifier of one sample does not depend on the rest of the batch (guidance needs that).
  return nn.relu(nn.GroupNorm(num_groups=min(x.shape[-1] // 4, 32) or 1)(x))


def _shortcut(x, out):
  """x average-pooled to out's resolution and zero-padded to its channels (no parameters)."""
  stride = x.shape[1] // out.shape[1]
  if stride > 1:
    x = nn.avg_pool(x, (stride, stride), (stride, stride))
  pad = out.shape[-1] - x.shape[-1]
  if pad > 0:
    x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, pad)])
  return x


class WideResNetBlock(nn.Module):
  """h = conv3x3(act(x), stride) + Dense(swish(temb)); out = conv3x3(act(h)) + shortcut(x).
  With `activate_before_residual` the shortcut starts from act(x) (the first group)."""

  channels: int
  stride: int = 1
  activate_before_residual: bool = False

  @nn.compact
  def __call__(self, x, temb):
    act_x = _norm_relu(x)
    orig = act_x if self.activate_before_residual else x
    h = nn.Conv(self.channels, (3, 3), (self.stride, self.stride), use_bias=False)(act_x)
    h = h + nn.Dense(self.channels)(nn.swish(temb))[:, None, None, :]
    h = nn.Conv(self.channels, (3, 3), use_bias=False)(_norm_relu(h))
    return h + _shortcut(orig, h)


@register_classifier("wideresnet")
class NoiseConditionalWideResNet(nn.Module):
  """WRN-(6 blocks_per_group + 4)-channel_multiplier with a noise-level embedding.
  x: [B, H, W, C] (H, W divisible by 4), noise_label: [B] -> logits [B, num_classes]."""

  num_classes: int = 10
  blocks_per_group: int = 4
  channel_multiplier: int = 10
  embedding_type: str = "fourier"  # 'fourier' (of log label: VE) | 'positional' (VP)
  fourier_scale: float = 16.0
  temb_dim: int = 512

  @nn.compact
  def __call__(self, x, noise_label, train: bool = False):
    del train  # no dropout, no batch statistics
    n = x[0].size
    # Per-image standardisation (the std floored at 1/sqrt(n), as tf.image does).
    mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
    std = jnp.maximum(jnp.std(x, axis=(1, 2, 3), keepdims=True), 1.0 / jnp.sqrt(n))
    h = (x - mean) / std
    temb = embed_noise_label(
      noise_label, self.embedding_type, self.temb_dim // 2, self.fourier_scale
    )
    temb = nn.Dense(self.temb_dim)(nn.swish(nn.Dense(self.temb_dim)(temb)))
    h = nn.Conv(16, (3, 3), use_bias=False)(h)
    for group, (width, stride) in enumerate([(16, 1), (32, 2), (64, 2)]):
      for i in range(self.blocks_per_group):
        h = WideResNetBlock(
          width * self.channel_multiplier,
          stride if i == 0 else 1,
          activate_before_residual=group == 0 and i == 0,
        )(h, temb)
    h = jnp.mean(_norm_relu(h), axis=(1, 2))
    return nn.Dense(self.num_classes)(h)


@register_classifier("mlp_classifier")
class NoiseConditionalMLPClassifier(nn.Module):
  """x: [B, D], noise_label: [B] -> logits [B, num_classes]: residual MLP with the noise-level
  embedding added to every block."""

  num_classes: int = 8
  hidden: int = 128
  num_layers: int = 3
  embedding_type: str = "positional"
  embedding_dim: int = 64
  fourier_scale: float = 16.0

  @nn.compact
  def __call__(self, x, noise_label, train: bool = False):
    del train
    emb = embed_noise_label(
      noise_label, self.embedding_type, self.embedding_dim, self.fourier_scale
    )
    emb = nn.Dense(self.hidden)(nn.swish(nn.Dense(self.hidden)(emb)))
    h = nn.Dense(self.hidden)(x.reshape(len(x), -1)) + emb
    for _ in range(self.num_layers):
      r = nn.Dense(self.hidden)(nn.swish(nn.LayerNorm()(h))) + nn.Dense(self.hidden)(emb)
      h = h + nn.Dense(self.hidden)(nn.swish(r))
    return nn.Dense(self.num_classes)(nn.swish(h))


def classifier_logits_fn(classifier: nn.Module, params, sde, discrete: bool = False):
  """logits_fn(x, t) -> [B, K] of a trained noise-conditional classifier, for guidance: the label
  fed to it is the SDE's noise label at t, as in training."""

  def logits_fn(x, t):
    return classifier.apply({"params": params}, x, sde.noise_label(t, discrete))

  return logits_fn
