"""Controllable generation (paper section 5 and appendix I): guidance and imputation.

Class-conditional sampling with a noise-conditional classifier p_t(y | x) (paper eq. 14):

    grad_x log p_t(x | y) = grad_x log p_t(x) + grad_x log p_t(y | x),

and with a guidance scale w (w = 1 exact conditional, w > 1 sharper, w = 0 unconditional):

    score_w(x, t) = score(x, t) + w grad_x log p_t(y | x).

Classifier-free guidance (Ho & Salimans 2022) combines a label-conditional and an unconditional
prediction of one network; by Bayes' rule it is classifier guidance with the implicit classifier
p_t(y | x) = p_t(x | y) p(y) / p_t(x):

    score_w = score(x, t) + w (score(x, t | y) - score(x, t)),   eps_w likewise in eps form.

Inpainting and colorization impose what is known at every step of any sampler (the `project`
hook of `score_sde.sampling.base`): the known coordinates y of x_0 are re-noised to the current
time, x_t[known] = a(t) y + s(t) z (paper appendix I.2), and the sampler moves the rest.
Colorization is inpainting in a decoupled colour space: an orthogonal map of the RGB channels
whose first axis is the grey level, known for every pixel. An orthogonal map keeps the noise
isotropic, so the SDE, the re-noising and the score are unchanged in the new coordinates.

Shapes: x: [B, ...], t: [B], labels y: [B] int; classifier logits [B, K].
"""

import math
from typing import Callable, Optional

import jax
import jax.numpy as jnp

from score_sde.sde import LinearSDE, ScoreFn, bcast

LogitsFn = Callable[[jax.Array, jax.Array], jax.Array]  # (x, t) -> [B, K] logits of p_t(y | x)


# --- guidance -------------------------------------------------------------------------------
def classifier_log_prob_grad(
  logits_fn: LogitsFn, x: jax.Array, t: jax.Array, y: jax.Array
) -> jax.Array:
  """grad_x log p_t(y | x) = grad_x log_softmax(logits_fn(x, t))[y], [B, ...].

  The classifier acts on each sample alone, so the gradient of the batch sum of log-probabilities
  is the per-sample gradient (one backward pass)."""

  def total_log_prob(x):
    logp = jax.nn.log_softmax(logits_fn(x, t), axis=-1)
    return jnp.sum(jnp.take_along_axis(logp, y[:, None], axis=-1))

  return jax.grad(total_log_prob)(x)


def classifier_guided_score(
  score_fn: ScoreFn, logits_fn: LogitsFn, y: jax.Array, scale: float = 1.0
) -> ScoreFn:
  """score_fn(x, t) + scale grad_x log p_t(y | x): samples of class y (scale 1), or the guided,
  sharper distribution (scale > 1). y: [B] labels of the batch being sampled."""

  def guided(x, t):
    return score_fn(x, t) + scale * classifier_log_prob_grad(logits_fn, x, t, y)

  return guided


def guidance_combination(cond: jax.Array, uncond: jax.Array, w: float) -> jax.Array:
  """uncond + w (cond - uncond): linear, so the same formula serves score and eps predictions."""
  return uncond + w * (cond - uncond)


def classifier_free_score(cond_score_fn: ScoreFn, uncond_score_fn: ScoreFn, w: float) -> ScoreFn:
  """Classifier-free guidance in score form: score_u + w (score_c - score_u)."""

  def guided(x, t):
    return guidance_combination(cond_score_fn(x, t), uncond_score_fn(x, t), w)

  return guided


def classifier_free_eps(
  cond_eps_fn: Callable, uncond_eps_fn: Callable, w: float, sde: LinearSDE
) -> ScoreFn:
  """Classifier-free guidance in eps form (Ho & Salimans eq. 6), returned as a score:
  eps_w = eps_u + w (eps_c - eps_u), score = -eps_w / s(t). Equal to the score form, since
  score = -eps / s is linear in eps."""

  def guided(x, t):
    eps = guidance_combination(cond_eps_fn(x, t), uncond_eps_fn(x, t), w)
    return -eps / bcast(sde.alpha_sigma(t)[1], x)

  return guided


def label_score_fns(score_fn_y: Callable, y: jax.Array, null_label: int):
  """(conditional, unconditional) score_fn(x, t) of a label-conditional network
  `score_fn_y(x, t, labels)` trained with label dropout: the unconditional one is fed the extra
  'no label' class `null_label` (= num_classes)."""
  null = jnp.full_like(y, null_label)
  return (lambda x, t: score_fn_y(x, t, y)), (lambda x, t: score_fn_y(x, t, null))


# --- inpainting -----------------------------------------------------------------------------
def impose(x: jax.Array, known: jax.Array, mask: jax.Array) -> jax.Array:
  """mask known + (1 - mask) x: the known entries (mask 1) replace those of x."""
  return mask * known + (1.0 - mask) * x


def renoise(sde: LinearSDE, data: jax.Array, t: jax.Array, key: Optional[jax.Array]):
  """x_t = a(t) data + s(t) z, z ~ N(0, I): a draw of p_t(x_t | x_0 = data); key None: a(t) data."""
  a, s = sde.alpha_sigma(t)
  mean = bcast(a, data) * data
  if key is None:
    return mean
  return mean + bcast(s, data) * jax.random.normal(key, data.shape, data.dtype)


def inpaint_projector(sde: LinearSDE, data: jax.Array, mask: jax.Array) -> Callable:
  """project(x, t, key): x with its known entries (mask 1) replaced by a(t) data + s(t) z.
  data, mask: broadcastable to the sample shape [B, ...] (entries of data under mask 0 unused)."""

  def project(x, t, key):
    return impose(x, renoise(sde, jnp.broadcast_to(data, x.shape).astype(x.dtype), t, key), mask)

  return project


def inpaint(
  sample_fn: Callable,
  key: jax.Array,
  sde: LinearSDE,
  score_fn: ScoreFn,
  data: jax.Array,
  mask: jax.Array,
  **sampler_opts,
):
  """Samples x_0 given its entries under `mask` (data, mask: [B, ...]) with any sampler
  `sample_fn(key, sde, score_fn, shape, project=..., **opts)` of `score_sde.sampling`; the known
  entries of the result are the data exactly. Returns (x: [B, ...], nfe)."""
  x, nfe = sample_fn(
    key, sde, score_fn, data.shape, project=inpaint_projector(sde, data, mask), **sampler_opts
  )
  return impose(x, data, mask), nfe


# --- colorization ---------------------------------------------------------------------------
def color_decoupling_matrix(dtype=jnp.float32) -> jax.Array:
  """Orthogonal M [3, 3] whose first column is (1, 1, 1) / sqrt(3): decoupled = rgb @ M, so
  channel 0 is sqrt(3) times the grey level (the channel mean); the other columns,
  (-2, 1, 1) / sqrt(6) and (0, 1, -1) / sqrt(2), span the colour differences."""
  m = [
    [1 / math.sqrt(3), -2 / math.sqrt(6), 0.0],
    [1 / math.sqrt(3), 1 / math.sqrt(6), 1 / math.sqrt(2)],
    [1 / math.sqrt(3), 1 / math.sqrt(6), -1 / math.sqrt(2)],
  ]
  return jnp.asarray(m, dtype)


def decouple_colors(x: jax.Array) -> jax.Array:
  """RGB [..., 3] -> decoupled [..., 3] (grey axis first); inverse `couple_colors`."""
  return x @ color_decoupling_matrix(x.dtype)


def couple_colors(z: jax.Array) -> jax.Array:
  """Decoupled [..., 3] -> RGB: z @ M^T, the exact inverse since M is orthogonal."""
  return z @ color_decoupling_matrix(z.dtype).T


def grey_level(x: jax.Array) -> jax.Array:
  """The channel mean of RGB images [..., 3] -> [..., 1]: what colorization keeps."""
  return jnp.mean(x, axis=-1, keepdims=True)


def grey_known(grey: jax.Array):
  """(decoupled data [..., 3], mask [3]) with the grey level known: channel 0 = sqrt(3) grey."""
  known = jnp.concatenate([math.sqrt(3.0) * grey, jnp.zeros_like(grey), jnp.zeros_like(grey)], -1)
  mask = jnp.zeros(known.shape[-1:], grey.dtype).at[0].set(1.0)
  return known, mask


def colorize_projector(sde: LinearSDE, grey: jax.Array) -> Callable:
  """project(x, t, key) for RGB samples x: [B, H, W, 3] given grey levels grey: [B, H, W, 1]:
  inpainting of the grey axis in the decoupled space, mapped back to RGB."""
  known, mask = grey_known(grey)
  inner = inpaint_projector(sde, known, mask)

  def project(x, t, key):
    return couple_colors(inner(decouple_colors(x), t, key))

  return project


def desaturate_into_range(x: jax.Array, lo: float, hi: float) -> jax.Array:
  """RGB [..., 3] moved toward its grey level until every channel lies in [lo, hi]:

      out = g + alpha (x - g),  g = grey_level(x),
      alpha = the largest value in [0, 1] with lo <= g + alpha (x - g) <= hi, per pixel.

  The grey level is kept exactly (the colour difference x - g has channel mean 0) and the hue is
  kept; clipping each channel instead would change the grey level that colorization imposed.
  Pixels whose grey level is itself outside [lo, hi] become that grey."""
  g = grey_level(x)
  d = x - g
  safe = jnp.where(d == 0, 1.0, d)
  room = jnp.where(d > 0, (hi - g) / safe, jnp.where(d < 0, (lo - g) / safe, jnp.inf))
  alpha = jnp.clip(jnp.min(room, axis=-1, keepdims=True), 0.0, 1.0)
  return jnp.where(alpha < 1.0, g + alpha * d, x)  # in-range pixels bit for bit


def colorize(
  sample_fn: Callable,
  key: jax.Array,
  sde: LinearSDE,
  score_fn: ScoreFn,
  grey: jax.Array,
  **sampler_opts,
):
  """RGB samples [B, H, W, 3] whose grey level is `grey` [B, H, W, 1] exactly, with any sampler
  (see `inpaint`). Returns (x, nfe)."""
  shape = grey.shape[:-1] + (3,)
  x, nfe = sample_fn(
    key, sde, score_fn, shape, project=colorize_projector(sde, grey), **sampler_opts
  )
  known, mask = grey_known(grey)
  return couple_colors(impose(decouple_colors(x), known, mask)), nfe


# --- noise-conditional classifiers --------------------------------------------------------------
def noisy_classifier_loss(
  key: jax.Array,
  logits_fn: Callable,
  x0: jax.Array,
  y: jax.Array,
  sde: LinearSDE,
  *,
  eps: float = 1e-5,
  discrete: bool = False,
):
  """Cross-entropy of a noise-conditional classifier on data noised by the SDE (paper I.1):

      loss = E_t E_z [-log softmax(logits_fn(x_t, label(t)))[y]],
      x_t = a(t) x0 + s(t) z,  t ~ U(eps, T),  z ~ N(0, I),

  label(t) = sde.noise_label(t, discrete), what the score network of the same SDE receives.
  x0: [B, ...], y: [B] int; logits_fn(x, label) -> [B, K]. Returns (mean loss, per-sample [B]).
  """
  kt, kz = jax.random.split(key)
  t = jax.random.uniform(kt, (x0.shape[0],), x0.dtype, eps, sde.T)
  a, s = sde.alpha_sigma(t)
  xt = bcast(a, x0) * x0 + bcast(s, x0) * jax.random.normal(kz, x0.shape, x0.dtype)
  logp = jax.nn.log_softmax(logits_fn(xt, sde.noise_label(t, discrete)), axis=-1)
  per_sample = -jnp.take_along_axis(logp, y[:, None].astype(jnp.int32), axis=-1)[:, 0]
  return jnp.mean(per_sample), per_sample
