"""What a network's noise label stands for: one rule for every network of the package.

A network is called as `model(x, label)` with `label = sde.noise_label(t, discrete)`, [B]
(`models.utils.pred_fn_from_model`), which is either
  - an integer array (int32): the noise-level index k of a discretely trained VE (SMLD) model,
    k = round((T - t) (N - 1) / T), 0 at t = T (sigma_max) and N - 1 at t ~ 0 (sigma_min); the
    sigma it stands for is read from the geometric table of the network's module attributes
    sigma_min, sigma_max, num_scales (= N), largest first:
        sigma_k = exp(log sigma_max + k / (N - 1) (log sigma_min - log sigma_max)),
    so sigma_k is sigma_i of the SMLD chain with i = N - 1 - k;
  - a float array: sigma(t) itself for a continuously trained VE model, or the time label
    999 t / T (t (N - 1) / T for a discrete DDPM model) of the VP-type SDEs, whose networks never
    read a sigma from it.
This is the 2021 release's convention (its `get_score_fn`, `get_sigmas` and the networks'
`used_sigmas = sigmas[labels]`). What the networks do with the label:
  - positional (sinusoidal) embedding: embeds the label's value (the index k, or 999 t);
  - Gaussian Fourier embedding: embeds log sigma;
  - scale_by_sigma: divides the output by sigma;
  - NCSN: indexes its per-level conditional norms by k (a float sigma goes to the nearest level).
The release's discrete VE networks used the Fourier embedding only with continuous training; for
an integer label we embed log sigma_k where the release would have taken the log of the index.
"""

import math
from typing import Optional

import jax
import jax.numpy as jnp


def sigma_table(sigma_min: float, sigma_max: float, num_scales: int) -> jax.Array:
  """[N] geometric sigmas from sigma_max (k = 0) down to sigma_min (k = N - 1)."""
  return jnp.exp(jnp.linspace(math.log(sigma_max), math.log(sigma_min), num_scales))


def is_level(label: jax.Array) -> bool:
  """Whether `label` holds level indices (an integer dtype) rather than sigma or a time label."""
  return jnp.issubdtype(jnp.asarray(label).dtype, jnp.integer)


def label_sigma(
  label: jax.Array,
  sigma_min: Optional[float],
  sigma_max: Optional[float],
  num_scales: Optional[int],
) -> jax.Array:
  """[B] label -> [B] sigma: sigma_table[label] for level indices, the (float) label otherwise."""
  label = jnp.asarray(label)
  if not is_level(label):
    return label
  if sigma_min is None or sigma_max is None or num_scales is None:
    raise ValueError(
      "an integer noise-level label needs the network's sigma table: set its "
      "sigma_min, sigma_max and num_scales (the runner does for discrete VE configs)"
    )
  return sigma_table(sigma_min, sigma_max, num_scales)[label]
