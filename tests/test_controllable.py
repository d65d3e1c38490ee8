"""Controllable generation against exact answers (paper section 5, appendix I).

Data are Gaussian mixtures with one class per component, so every quantity is closed-form:
the noisy classifier p_t(y | x) (the posterior component probabilities of the noised mixture),
the conditional score of p_t(x | y) (component y noised), and, for Gaussian data, the law of the
inpainting sampler. Sample moments are compared with the truth within 5 standard errors at the
sample size plus the small discretisation allowance of the sampler tests (test_sampling_pc):
  SE(mean_j) = sqrt(C_jj / n),   SE(cov_ij) = sqrt((C_ii C_jj + C_ij^2) / n).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_sampling_pc import separated_mixture

from score_sde import controllable as ctl, gmm as G
from score_sde.sampling import ddim_sample, edm_heun_sample, ode_sample, pc_sample
from score_sde.sde import VESDE, VPSDE, SubVPSDE

N_PER_CLASS = 1500


def assert_gaussian(x, mean, cov, *, rel_mean=0.05, rel_cov=0.08, z=5.0):
  """Samples x: [n, D] have mean `mean` and covariance `cov` within z standard errors plus
  `rel_mean` (of the std) / `rel_cov` (of sqrt(C_ii C_jj)) for the discretisation."""
  x, mean, cov = (np.asarray(v, np.float64) for v in (x, mean, cov))
  assert np.all(np.isfinite(x))
  n, std = len(x), np.sqrt(np.diag(cov))
  err_m = np.abs(x.mean(0) - mean)
  assert np.all(err_m <= z * std / np.sqrt(n) + rel_mean * std), f"mean {x.mean(0)} vs {mean}"
  scale = np.outer(std, std)
  err_c = np.abs(np.cov(x.T) - cov)
  assert np.all(err_c <= z * np.sqrt((scale**2 + cov**2) / n) + rel_cov * scale), (
    f"cov {np.cov(x.T)} vs {cov}"
  )


# --- guidance -------------------------------------------------------------------------------
@pytest.mark.parametrize("sde", [VPSDE(), VESDE(sigma_min=0.01, sigma_max=10.0)], ids=["vp", "ve"])
def test_exact_noisy_classifier_is_bayes_rule(sde, x64):
  """grad log p_t(x) + grad log p_t(y | x) = grad log p_t(x | y) at every t (paper eq. 14), with
  the classifier's gradient taken by autodiff and the conditional score in closed form."""
  g = separated_mixture(2)
  g = G.GaussianMixture(*(jnp.asarray(v, jnp.float64) for v in (g.weights, g.means, g.covs)))
  y = jnp.arange(64) % 3
  logits_fn = G.marginal_class_logits(g, sde)

  @jax.jit
  def both(k0, k1):
    x = 3.0 * jax.random.normal(k0, (64, 2), jnp.float64)
    t = jax.random.uniform(k1, (64,), jnp.float64, 0.01, 1.0)
    guided = ctl.classifier_guided_score(G.marginal_score_fn(g, sde), logits_fn, y, 1.0)(x, t)
    return guided, G.component_score_fn(g, sde)(x, t, y), jax.nn.softmax(logits_fn(x, t), -1)

  guided, exact, probs = both(jax.random.key(0), jax.random.key(1))
  np.testing.assert_allclose(jnp.sum(probs, -1), 1.0, rtol=1e-12)
  np.testing.assert_allclose(guided, exact, rtol=1e-9, atol=1e-9)


def test_classifier_free_equals_classifier_guidance_with_the_bayes_classifier(x64):
  """score_u + w (score_c - score_u) = score_u + w grad log p_t(y | x) exactly, in score and in
  eps form (eps = -s(t) score), at w = 0, 1 and 2.5 (w traced: one compiled program)."""
  sde = VPSDE()
  g = separated_mixture(2)
  g = G.GaussianMixture(*(jnp.asarray(v, jnp.float64) for v in (g.weights, g.means, g.covs)))
  x, t = jax.jit(
    lambda k0, k1: (
      3.0 * jax.random.normal(k0, (32, 2), jnp.float64),
      jax.random.uniform(k1, (32,), jnp.float64, 0.01, 1.0),
    )
  )(jax.random.key(0), jax.random.key(1))
  y = jnp.arange(32) % 3
  score_u = G.marginal_score_fn(g, sde)
  score_c = lambda x, t: G.component_score_fn(g, sde)(x, t, y)
  s = lambda t: sde.alpha_sigma(t)[1][:, None]

  @jax.jit
  def forms(x, t, w):
    classifier = ctl.classifier_guided_score(score_u, G.marginal_class_logits(g, sde), y, w)(x, t)
    cfg = ctl.classifier_free_score(score_c, score_u, w)(x, t)
    cfg_eps = ctl.classifier_free_eps(
      lambda x, t: -s(t) * score_c(x, t), lambda x, t: -s(t) * score_u(x, t), w, sde
    )(x, t)
    return classifier, cfg, cfg_eps

  for w in (0.0, 1.0, 2.5):
    classifier, cfg, cfg_eps = forms(x, t, w)
    np.testing.assert_allclose(cfg, classifier, rtol=1e-9, atol=1e-9, err_msg=f"w = {w}")
    np.testing.assert_allclose(cfg_eps, cfg, rtol=1e-12, atol=1e-12, err_msg=f"w = {w}")


def _per_class_samples(sampler, score_fn_of_y, num_classes, key=1):
  y = jnp.repeat(jnp.arange(num_classes), N_PER_CLASS)
  x = jax.jit(lambda k: sampler(k, score_fn_of_y(y), (len(y), 2))[0])(jax.random.key(key))
  return np.asarray(x), np.asarray(y)


SAMPLERS = {
  "pc_em": lambda sde: lambda k, sf, shape: pc_sample(k, sde, sf, shape, num_steps=300),
  "ddim": lambda sde: lambda k, sf, shape: ddim_sample(k, sde, sf, shape, num_steps=200),
}


@pytest.mark.parametrize("sampler", ["pc_em", pytest.param("ddim", marks=pytest.mark.slow)])
def test_classifier_guidance_at_scale_one_samples_the_class(sampler):
  """Unconditional mixture score + the exact noisy classifier draws component y only, with its
  mean and covariance (paper section 5: class-conditional sampling is exact at scale 1)."""
  sde, g = VPSDE(), separated_mixture(2)
  score_fn = G.marginal_score_fn(g, sde)
  logits_fn = G.marginal_class_logits(g, sde)
  x, y = _per_class_samples(
    SAMPLERS[sampler](sde), lambda y: ctl.classifier_guided_score(score_fn, logits_fn, y, 1.0), 3
  )
  assigned = np.asarray(jax.jit(lambda x: jnp.argmax(g.component_logps(x), -1))(x))
  # Components are >= 8 stds apart: a sample of class y lies in component y up to ~1e-10.
  assert np.mean(assigned == y) > 0.999
  for k in range(3):
    assert_gaussian(x[y == k], g.means[k], g.covs[k])


def test_guidance_scale_above_one_extrapolates_as_theory_says():
  """Classes of one shared covariance C: the guided score at scale w,
      (1 - w) grad log N(x; a mu_u, a^2 C + s^2 I) + w grad log N(x; a mu_y, a^2 C + s^2 I)
    = grad log N(x; a (mu_u + w (mu_y - mu_u)), a^2 C + s^2 I),
  is the exact score of the noised N(mu_u + w (mu_y - mu_u), C): guided samples have that mean and
  the covariance C (here at w = 3). With unequal covariances the guided score is no score of a
  noised distribution, and its samples follow no closed form."""
  sde, w = VPSDE(), 3.0
  cov = jnp.array([[0.09, 0.03], [0.03, 0.04]])
  means = jnp.array([[0.0, 0.0], [0.4, -0.3]])  # mu_u (class 0), mu_y (class 1)
  pair = G.GaussianMixture(jnp.array([0.5, 0.5]), means, jnp.stack([cov, cov]))
  score_u = lambda x, t: G.component_score_fn(pair, sde)(x, t, jnp.zeros(len(x), jnp.int32))
  score_c = lambda x, t: G.component_score_fn(pair, sde)(x, t, jnp.ones(len(x), jnp.int32))
  target = means[0] + w * (means[1] - means[0])
  sample = SAMPLERS["pc_em"](sde)
  x = jax.jit(lambda k: sample(k, ctl.classifier_free_score(score_c, score_u, w), (3000, 2))[0])(
    jax.random.key(0)
  )
  assert_gaussian(x, target, cov)


# --- inpainting -----------------------------------------------------------------------------
def _replacement_law(sde, num_steps, eps, mu, cov, known, y):
  """Exact mean and covariance of the unknown coordinates returned by pc_sample (Euler-Maruyama,
  no corrector, noise removal) with the projection of `ctl.inpaint_projector` and the exact
  Gaussian score -P_t (x - a mu), P_t = (a^2 C + s^2 I)^{-1}: a linear Gaussian recursion.
  At grid time t the known part is a y + s z_k (fresh z_k); one step to t' (dt = t' - t < 0):
      x_u' = x_u + dt (f x_u + g^2 [P_uu (x_u - a mu_u) + P_uk (x_k - a mu_k)])
             + g sqrt(-dt) z_u."""
  ts = np.linspace(sde.T, eps, num_steps + 1)
  unk = ~known
  d_u = int(unk.sum())
  m = np.zeros(d_u)
  v = sde.prior_std**2 * np.eye(d_u)
  for i in range(num_steps):
    t, dt = ts[i], ts[i + 1] - ts[i]
    a, s = (float(c) for c in sde.alpha_sigma(jnp.float32(t)))
    f, g2 = float(sde.f(jnp.float32(t))), float(sde.g2(jnp.float32(t)))
    prec = np.linalg.inv(a**2 * cov + s**2 * np.eye(len(mu)))
    p_uu, p_uk = prec[np.ix_(unk, unk)], prec[np.ix_(unk, known)]
    amat = (1 + f * dt) * np.eye(d_u) + dt * g2 * p_uu
    b = dt * g2 * (-p_uu @ (a * mu[unk]) + p_uk @ (a * y - a * mu[known]))
    c_k = dt * g2 * s * p_uk  # coefficient of z_k
    m = amat @ m + b
    v = amat @ v @ amat.T + c_k @ c_k.T + (0.0 if i == num_steps - 1 else -dt * g2) * np.eye(d_u)
  return m, v


def test_inpainting_follows_the_exact_law_of_the_replacement_sampler():
  """Gaussian data, exact score, Euler-Maruyama with the known coordinates re-noised and imposed
  after every step: the imputed coordinates are Gaussian with the mean and covariance of the
  exact recursion `_replacement_law`, and the known ones equal the data exactly.

  The replacement method is not the exact conditional p(x_u | x_k = y) when x_u and x_k are
  correlated: here its law has mean (0.664, 0.319) and covariance ((0.327, 0.169), (0.169, 0.278))
  against the conditional's (0.9, 0.3) and ((0.275, 0.175), (0.175, 0.275)) (printed with -s).
  The score it follows at time t conditions on the re-noised known values a y + s z, not on y."""
  sde, num_steps, eps = VPSDE(), 200, 1e-3
  mu = np.array([0.3, -0.2, 0.5])
  cov = np.array([[0.5, 0.3, 0.1], [0.3, 0.4, -0.1], [0.1, -0.1, 0.3]])
  known = np.array([False, True, False])
  y = np.array([0.6])
  g = G.GaussianMixture(
    jnp.ones(1), jnp.asarray(mu[None], jnp.float32), jnp.asarray(cov[None], jnp.float32)
  )
  n = 4000
  data = jnp.broadcast_to(jnp.asarray([0.0, y[0], 0.0], jnp.float32), (n, 3))
  mask = jnp.broadcast_to(jnp.asarray(known, jnp.float32), (n, 3))
  sample = lambda k: ctl.inpaint(
    pc_sample, k, sde, G.marginal_score_fn(g, sde), data, mask, num_steps=num_steps, eps=eps
  )[0]
  x = np.asarray(jax.jit(sample)(jax.random.key(0)))
  assert np.array_equal(x[:, known], np.asarray(data)[:, known])
  m_ref, v_ref = _replacement_law(sde, num_steps, eps, mu, cov, known, y)
  assert_gaussian(x[:, ~known], m_ref, v_ref, rel_mean=0.0, rel_cov=0.0)
  c_uk = cov[np.ix_(~known, known)]
  cond_mean = mu[~known] + c_uk @ np.linalg.solve(cov[np.ix_(known, known)], y - mu[known])
  cond_cov = cov[np.ix_(~known, ~known)] - c_uk @ np.linalg.solve(cov[np.ix_(known, known)], c_uk.T)
  print("replacement law", m_ref, v_ref.ravel(), "exact conditional", cond_mean, cond_cov.ravel())


# Every sampler, with and without noise: (sampler, options).
PROJECTED = {
  "pc_em": (pc_sample, dict(num_steps=200)),
  "pc_rd_langevin": (
    pc_sample,
    dict(predictor="reverse_diffusion", corrector="langevin", num_steps=100),
  ),
  "pc_ode": (pc_sample, dict(num_steps=200, probability_flow=True)),
  "ode_rk4": (ode_sample, dict(method="rk4", num_steps=100)),
  "ode_heun": (ode_sample, dict(method="heun", num_steps=100)),
  "edm_heun": (edm_heun_sample, dict(num_steps=40)),
  "ddim_eta1": (ddim_sample, dict(num_steps=200, eta=1.0)),
}


SLOW_PROJECTED = ("pc_em", "pc_ode", "ode_heun", "edm_heun")


@pytest.mark.parametrize(
  "name",
  [
    pytest.param(n, marks=pytest.mark.slow) if n in SLOW_PROJECTED else n for n in sorted(PROJECTED)
  ],
)
def test_inpainting_with_every_sampler_is_exact_for_independent_blocks(name):
  """Gaussian data whose unknown block is independent of the known one (correlated inside): the
  exact score of the unknown block does not depend on the known values, so every sampler with the
  projection must return the unknown block with its exact law N(mu_u, C_uu) = p(x_u | x_k), and
  the known block exactly."""
  sde = SubVPSDE() if name == "ode_heun" else VPSDE()
  fn, opts = PROJECTED[name]
  mu = np.array([0.3, -0.2, 0.5])
  cov = np.array([[0.3, 0.12, 0.0], [0.12, 0.2, 0.0], [0.0, 0.0, 0.4]])
  known = np.array([False, False, True])
  g = G.GaussianMixture(
    jnp.ones(1), jnp.asarray(mu[None], jnp.float32), jnp.asarray(cov[None], jnp.float32)
  )
  n = 3000
  data = jnp.broadcast_to(jnp.asarray([0.0, 0.0, -1.0], jnp.float32), (n, 3))
  mask = jnp.broadcast_to(jnp.asarray(known, jnp.float32), (n, 3))
  x, nfe = jax.jit(
    lambda k: ctl.inpaint(fn, k, sde, G.marginal_score_fn(g, sde), data, mask, **opts)
  )(jax.random.key(2))
  x = np.asarray(x)
  assert int(nfe) > 0 and np.array_equal(x[:, 2], np.full(n, -1.0, np.float32))
  assert_gaussian(x[:, :2], mu[:2], cov[:2, :2])


def test_identity_projection_leaves_the_samples_unchanged():
  """The projection's keys come from their own stream: a projection that returns x unchanged
  gives the samples of no projection, for every stochastic sampler: bitwise for pc and ddim; EDM
  projects a(t) x_hat and divides by a(t) again, which may round in the last bit."""
  sde, score = VPSDE(), lambda x, t: -x
  for name in ("pc_em_langevin", "ddim_eta1", "edm_heun"):
    fn, opts = PROJECTED.get(name, (pc_sample, dict(corrector="langevin")))
    opts = dict(opts, num_steps=25, **({"s_churn": 10.0} if name == "edm_heun" else {}))

    def both(k, fn=fn, opts=opts):  # one compiled program for the pair
      run = lambda project: fn(k, sde, score, (16, 3), project=project, **opts)[0]
      return run(None), run(lambda x, t, key: x)

    plain, projected = jax.jit(both)(jax.random.key(5))
    np.testing.assert_allclose(
      plain, projected, rtol=0, atol=0 if name != "edm_heun" else 1e-5, err_msg=name
    )


def test_projection_with_adaptive_ode_fails_before_compute():
  sde = VPSDE()
  with pytest.raises(ValueError, match="num_steps"):
    ode_sample(jax.random.key(0), sde, lambda x, t: -x, (4, 3), project=lambda x, t, k: x)


# --- colorization ---------------------------------------------------------------------------
def test_color_transform_is_orthogonal_and_its_inverse_exact(x64):
  @jax.jit
  def parts(key):
    x = jax.random.normal(key, (4, 5, 5, 3), jnp.float64)
    m, d = ctl.color_decoupling_matrix(jnp.float64), ctl.decouple_colors(x)
    return m, x, ctl.couple_colors(d), d, ctl.grey_level(x)

  m, x, back, decoupled, grey = parts(jax.random.key(0))
  np.testing.assert_allclose(m.T @ m, np.eye(3), atol=1e-15)
  np.testing.assert_allclose(m[:, 0], np.full(3, 1 / np.sqrt(3)), atol=1e-15)
  np.testing.assert_allclose(back, x, atol=1e-14)
  np.testing.assert_allclose(decoupled[..., :1], np.sqrt(3) * grey, atol=1e-14)


def test_colorization_keeps_the_grey_level_exactly():
  """RGB 'images' [B, 2, 2, 3] from a Gaussian with correlated channels, exact score: colorized
  samples have exactly the given grey level, and colour (the decoupled channels 1, 2) varies."""
  sde = VPSDE()
  d = 12
  rng = np.random.default_rng(0)
  q = np.linalg.qr(rng.normal(size=(d, d)))[0]
  cov = (q * rng.uniform(0.1, 0.5, d) ** 2) @ q.T
  g = G.GaussianMixture(jnp.ones(1), jnp.zeros((1, d)), jnp.asarray(cov[None], jnp.float32))
  flat_score = G.marginal_score_fn(g, sde)
  score = lambda x, t: flat_score(x.reshape(len(x), -1), t).reshape(x.shape)
  grey = jax.random.uniform(jax.random.key(1), (64, 2, 2, 1), minval=-0.5, maxval=0.5)
  x, _ = jax.jit(lambda k: ctl.colorize(pc_sample, k, sde, score, grey, num_steps=100))(
    jax.random.key(0)
  )
  assert x.shape == (64, 2, 2, 3)
  np.testing.assert_allclose(ctl.grey_level(x), grey, atol=1e-6)
  assert float(jnp.std(ctl.decouple_colors(x)[..., 1:])) > 0.05


def test_desaturation_into_range_keeps_grey_and_hue(x64):
  """out = g + alpha (x - g): in [lo, hi] with the grey level kept exactly; colours already in
  range are unchanged; an out-of-range colour keeps its hue (the colour difference is scaled by
  alpha in (0, 1)) and touches the range's edge (the largest alpha)."""

  @jax.jit
  def parts(key):
    x = jax.random.normal(key, (500, 3), jnp.float64) * 0.8
    out = ctl.desaturate_into_range(x, -1.0, 1.0)
    return x, out, ctl.grey_level(x), ctl.grey_level(out)

  x, out, grey, grey_out = (np.asarray(v) for v in parts(jax.random.key(0)))
  np.testing.assert_allclose(grey_out, grey, atol=1e-14)
  inside = np.all(np.abs(grey) <= 1.0, axis=-1)
  assert np.all(np.abs(np.asarray(out)[inside]) <= 1.0 + 1e-12)
  ok = np.all(np.abs(x) <= 1.0, axis=-1)
  np.testing.assert_array_equal(np.asarray(out)[ok], np.asarray(x)[ok])
  moved = inside & ~ok
  assert moved.sum() > 50
  d_in, d_out = np.asarray(x - grey)[moved], np.asarray(out - grey)[moved]
  alpha = np.sum(d_out * d_in, -1) / np.sum(d_in * d_in, -1)
  assert np.all((alpha > 0) & (alpha < 1))
  np.testing.assert_allclose(d_out, alpha[:, None] * d_in, atol=1e-12)
  np.testing.assert_allclose(np.max(np.abs(np.asarray(out)[moved]), -1), 1.0, atol=1e-12)
