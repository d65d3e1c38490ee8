"""Likelihood by the probability-flow ODE against closed-form Gaussian-mixture log-densities."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from score_sde import gmm, interpolate, likelihood, sde as sde_lib

SDES = {
  "vpsde": dict(),
  "vesde": dict(sigma_min=0.01, sigma_max=100.0),
}
EPS = 1e-5


def _mixture(dtype, dim=2, seed=None):
  """The ring of eight, or a random well-conditioned 3-component mixture drawn in NumPy (drawn
  with jax.random op by op, the Dirichlet weights alone cost seconds of eager dispatch)."""
  if seed is None:
    g = gmm.ring_mixture(radius=1.5, std=0.3)
    arrays = (g.weights, g.means, g.covs)
  else:
    rng = np.random.default_rng(seed)
    q = np.linalg.qr(rng.normal(size=(3, dim, dim)))[0]
    stds = rng.uniform(0.3, 0.6, (3, dim))
    arrays = (
      rng.dirichlet(np.full(3, 5.0)),
      rng.normal(size=(3, dim)),
      (q * stds[:, None] ** 2) @ q.transpose(0, 2, 1),
    )
  return gmm.GaussianMixture(*(jnp.asarray(a, dtype) for a in arrays))


def _sample(g, seed, n):
  """n exact samples of the mixture g (jitted, as everything here: eager dispatch is slow)."""
  return jax.jit(lambda k: g.sample(k, n))(jax.random.key(seed))


# Sub-VP runs the same likelihood code as VP; its exact marginals and score are checked against
# direct Gaussian algebra in test_gmm and its moment equations in test_sde.
@pytest.mark.parametrize("name", ["vpsde", "vesde"])
def test_exact_trace_matches_mixture_log_density(x64, name):
  s = sde_lib.get_sde(name, **SDES[name])
  g = _mixture(jnp.float64)
  x = _sample(g, 0, 6)
  score_fn = gmm.marginal_score_fn(g, s)
  exact_pT = lambda z: gmm.marginal_log_prob(g, s, z, s.T)

  @jax.jit
  def run(x):
    logp, z, nfe = likelihood.log_likelihood(
      jax.random.key(0),
      s,
      score_fn,
      x,
      divergence="exact",
      rtol=1e-8,
      atol=1e-8,
      eps=EPS,
      prior_logp=exact_pT,
    )
    want = gmm.marginal_log_prob(g, s, x, EPS)  # the ODE starts at t = eps: compare with p_eps
    return logp, z, nfe, want, logp - exact_pT(z) + s.prior_logp(z)

  logp, z, nfe, want, with_prior = run(x)
  d = x.shape[1]
  # With the exact terminal density only ODE and divergence errors remain: far below 1e-3.
  np.testing.assert_allclose(np.asarray(logp) / d, np.asarray(want) / d, atol=1e-6)
  # With the model's N(0, prior_std^2) prior (what a trained model gets): still within 1e-3 / dim.
  np.testing.assert_allclose(np.asarray(with_prior) / d, np.asarray(want) / d, atol=1e-3)
  assert int(nfe) > 20
  # The latent is the ODE's end point: decoding it returns x (tested below), and it is O(prior_std).
  assert float(jnp.std(z)) > 0.3 * s.prior_std


def test_hutchinson_is_unbiased(x64):
  """Both probes (Rademacher and Gaussian, E[v v^T] = I): the mean of n = 512 independent
  estimates of log p_eps at one point is the closed-form mixture value within 4 standard errors
  (SE ~ 0.03 nats here). With the exact terminal density as prior, the ODE error (rtol 1e-6) is
  far below that (test_exact_trace_matches_mixture_log_density), so any bias of the estimator
  beyond ~0.1 nats fails. Both solves are one jitted program."""
  s = sde_lib.get_sde("vpsde")
  g = _mixture(jnp.float64, dim=3, seed=1)
  score_fn = gmm.marginal_score_fn(g, s)
  x0 = _sample(g, 3, 1)
  n = 512
  x = jnp.repeat(x0, n, axis=0)  # one point, an independent probe per row
  exact_pT = lambda z: gmm.marginal_log_prob(g, s, z, s.T)
  kw = dict(rtol=1e-6, atol=1e-6, eps=EPS, prior_logp=exact_pT)
  names = ("hutchinson_rademacher", "hutchinson_gaussian")
  estimates = jax.jit(
    lambda k: (
      [likelihood.log_likelihood(k, s, score_fn, x, divergence=d, **kw)[0] for d in names]
      + [gmm.marginal_log_prob(g, s, x0, EPS)[0]]
    )
  )
  *ests, want = estimates(jax.random.key(7))
  for name, est in zip(names, ests):
    est = np.asarray(est)
    se = est.std(ddof=1) / np.sqrt(n)
    assert se > 1e-3, f"{name}: probes must differ between rows"
    assert abs(est.mean() - float(want)) < 4 * se, (name, est.mean(), float(want), se)


def test_exact_divergence_is_jacobian_trace():
  w = jax.random.normal(jax.random.key(0), (5, 5))
  fn = lambda x: jnp.tanh(x @ w) * x  # a nonlinear batched map, samples independent
  x = jax.random.normal(jax.random.key(1), (4, 5))

  @jax.jit
  def parts(x):
    out, div = likelihood.exact_divergence(fn, x)
    jac = jax.vmap(jax.jacfwd(lambda v: fn(v[None])[0]))(x)  # [4, 5, 5], per sample
    _, hut = likelihood.hutchinson_divergence(fn, x, jnp.ones_like(x))
    return out, div, jac, hut, fn(x)

  out, div, jac, hut, want_out = parts(x)
  want = jnp.trace(jac, axis1=1, axis2=2)
  np.testing.assert_allclose(np.asarray(out), np.asarray(want_out), rtol=1e-6)
  np.testing.assert_allclose(np.asarray(div), np.asarray(want), rtol=1e-5, atol=1e-5)
  full = jnp.sum(jac, axis=(1, 2))  # 1^T J 1: the probe of ones
  np.testing.assert_allclose(np.asarray(hut), np.asarray(full), rtol=1e-5, atol=1e-5)


def test_sharded_batch_takes_the_same_steps():
  """8 forced host devices vs one: the same per-sample log p and the same NFE (one error norm)."""
  assert jax.device_count() == 8
  s = sde_lib.get_sde("vpsde")
  g = _mixture(jnp.float32)
  score_fn = gmm.marginal_score_fn(g, s)
  x = _sample(g, 0, 16)
  f = lambda k, x: likelihood.log_likelihood(k, s, score_fn, x, rtol=1e-4, atol=1e-4)
  key = jax.random.key(5)
  lp1, z1, n1 = jax.jit(f)(key, x)
  mesh = Mesh(np.asarray(jax.devices()), ("data",))
  xs = jax.device_put(x, NamedSharding(mesh, P("data")))
  lp8, z8, n8 = jax.jit(f)(key, xs)
  assert len(lp8.sharding.device_set) == 8
  assert int(n1) == int(n8)
  np.testing.assert_allclose(np.asarray(lp8), np.asarray(lp1), rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(np.asarray(z8), np.asarray(z1), rtol=1e-5, atol=1e-5)


def test_encode_then_decode_returns_input(x64):
  """VE here; VP's round trip is test_interpolate_decodes_endpoints (alpha = 0 and 1 decode the
  encoded endpoints, to the same tolerance)."""
  s = sde_lib.get_sde("vesde", **SDES["vesde"])
  g = _mixture(jnp.float64)
  score_fn = gmm.marginal_score_fn(g, s)
  x = _sample(g, 2, 8)

  @jax.jit
  def round_trip(x, tol):  # the tolerance is traced: one program serves both
    z, _ = interpolate.encode(s, score_fn, x, rtol=tol, atol=tol)
    return z, interpolate.decode(s, score_fn, z, rtol=tol, atol=tol)[0]

  z, back = round_trip(x, 1e-9)
  np.testing.assert_allclose(np.asarray(back), np.asarray(x), atol=1e-6)
  assert float(jnp.max(jnp.abs(z - x))) > 0.1  # the latent is not the input
  # A loose tolerance leaves a visible round-trip error: the check can fail.
  _, back2 = round_trip(x, 1e-2)
  assert float(jnp.max(jnp.abs(back2 - x))) > 1e-6


def test_slerp_endpoints_and_norm():
  k0, k1 = jax.random.split(jax.random.key(0))
  z0 = jax.random.normal(k0, (3, 4, 4, 2))
  z1 = jax.random.normal(k1, (3, 4, 4, 2))
  z1 = (
    z1
    * (jnp.linalg.norm(z0.reshape(3, -1), axis=-1) / jnp.linalg.norm(z1.reshape(3, -1), axis=-1))[
      :, None, None, None
    ]
  )
  alphas = jnp.linspace(0, 1, 7)
  # parallel latents (z0, 2 z0): linear fallback, no NaN
  zs, same = jax.jit(
    lambda z0, z1: (interpolate.slerp(z0, z1, alphas), interpolate.slerp(z0, 2 * z0, alphas))
  )(z0, z1)
  assert zs.shape == (7, 3, 4, 4, 2)
  np.testing.assert_allclose(np.asarray(zs[0]), np.asarray(z0), atol=1e-5)
  np.testing.assert_allclose(np.asarray(zs[-1]), np.asarray(z1), atol=1e-5)
  norms = np.linalg.norm(np.asarray(zs).reshape(7, 3, -1), axis=-1)
  np.testing.assert_allclose(norms, np.broadcast_to(norms[0], norms.shape), rtol=1e-5)
  np.testing.assert_allclose(np.asarray(same[3]), np.asarray(1.5 * z0), rtol=1e-5)


@pytest.mark.slow  # four ODE solves in float64; slerp and the encode-decode round trip are fast
def test_interpolate_decodes_endpoints(x64):
  """slerp at alpha = 0, 1 returns the latents themselves: decode(encode(x)) = x on VP."""
  s = sde_lib.get_sde("vpsde")
  g = _mixture(jnp.float64)
  score_fn = gmm.marginal_score_fn(g, s)
  x = _sample(g, 4, 4)
  xs, nfe = jax.jit(
    lambda x: interpolate.interpolate(
      s, score_fn, x[:2], x[2:], jnp.array([0.0, 0.5, 1.0]), rtol=1e-9, atol=1e-9
    )
  )(x)
  assert xs.shape == (3, 2, 2)
  np.testing.assert_allclose(np.asarray(xs[0]), np.asarray(x[:2]), atol=1e-6)
  np.testing.assert_allclose(np.asarray(xs[-1]), np.asarray(x[2:]), atol=1e-6)
  assert float(jnp.max(jnp.abs(xs[1] - xs[0]))) > 0.1  # the midpoint is neither endpoint


def test_unknown_divergence_lists_choices():
  s = sde_lib.get_sde("vpsde")
  with pytest.raises(ValueError, match="hutchinson_rademacher"):
    likelihood.log_likelihood(
      jax.random.key(0), s, lambda x, t: -x, jnp.zeros((2, 2)), divergence="no_such"
    )


def test_per_sample_max_norm():
  """max over samples of each sample's RMS over all leaves; the RMS of the batch dilutes it."""
  from score_sde import ode

  x = jnp.zeros((4, 3)).at[2].set(jnp.array([3.0, 0.0, 4.0]))
  delta = jnp.array([0.0, 1.0, 0.0, 0.0])
  got = ode.per_sample_max_norm((x, delta))
  np.testing.assert_allclose(
    float(got), np.sqrt(25.0 / 4), rtol=1e-6
  )  # sample 2: (9 + 16) / 4 values
  batch_rms = np.sqrt(26.0 / 16)
  assert float(got) > batch_rms
