"""Targets and losses: exact conversions, the exact score minimises every objective, unbiased IS."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from score_sde import losses, sde as sde_lib, targets

# Every registered SDE (VE with a smaller sigma_max).
SDES = {name: sde_lib.get_sde(name) for name in sde_lib.SDES}
SDES["vesde"] = sde_lib.VESDE(sigma_max=5.0)


@pytest.mark.parametrize("name", SDES)
@pytest.mark.parametrize("source", targets.TARGETS)
def test_target_round_trips(name, source, x64):
  """score -> eps -> x0 -> v -> source returns the input exactly (float64)."""
  sde = SDES[name]
  key = jax.random.key(0)
  t = jax.random.uniform(key, (16,), minval=0.01, maxval=0.98 * sde.T)
  x = jax.random.normal(jax.random.fold_in(key, 1), (16, 3, 2))
  pred = jax.random.normal(jax.random.fold_in(key, 2), (16, 3, 2))
  c = targets.path_coeffs(sde, t)
  y = pred
  chain = [source, *[u for u in targets.TARGETS if u != source], source]
  for a, b in zip(chain[:-1], chain[1:]):
    y = targets.convert(y, x, c, a, b)
  np.testing.assert_allclose(y, pred, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", SDES)
def test_targets_from_true_noise(name, x64):
  """On every path, for x_t = a x0 + s eps each target's definition holds (v = a' x0 + s' eps
  via autodiff)."""
  sde = SDES[name]
  key = jax.random.key(3)
  t = jnp.array([0.1, 0.4, 0.8]) * sde.T
  x0 = jax.random.normal(key, (3, 4))
  eps = jax.random.normal(jax.random.fold_in(key, 1), (3, 4))
  a, s = sde.alpha_sigma(t)
  _, da = jax.jvp(lambda u: sde.alpha_sigma(u)[0], (t,), (jnp.ones(3),))
  _, ds = jax.jvp(lambda u: sde.alpha_sigma(u)[1], (t,), (jnp.ones(3),))
  xt = a[:, None] * x0 + s[:, None] * eps
  expected = {
    "eps": eps,
    "x0": x0,
    "score": -eps / s[:, None],
    "v": da[:, None] * x0 + ds[:, None] * eps,
  }
  for target in targets.TARGETS:
    got = targets.from_eps(eps, xt, targets.path_coeffs(sde, t), target)
    np.testing.assert_allclose(got, expected[target], rtol=1e-9, atol=1e-9, err_msg=target)


def _gaussian_setup(sde, d=4, mu=0.7, sd=0.5):
  """x0 ~ N(mu, sd^2 I): p_t = N(a mu, (a^2 sd^2 + s^2) I), so the exact score is known."""

  def score(x, t):
    a, s = sde.alpha_sigma(t)
    return -(x - a[:, None] * mu) / (a[:, None] ** 2 * sd**2 + s[:, None] ** 2)

  x0 = mu + sd * jax.random.normal(jax.random.key(7), (20000, d))
  return score, x0


CASES = [
  ("dsm", "score", False, False),
  ("dsm", "eps", False, False),
  ("dsm", "x0", False, False),
  ("dsm", "v", False, False),
  ("dsm", "eps", True, False),
  ("dsm", "score", True, True),
  ("dsm", "v", True, True),
  ("smld", "score", False, False),
  ("ddpm", "eps", False, False),
]


@pytest.mark.parametrize("loss_name,target,likelihood,importance", CASES)
def test_exact_score_minimises_loss(loss_name, target, likelihood, importance):
  """L(pred* + delta h) - L(pred*) > 0 for a perturbation h of the exact prediction, both signs.

  Common random numbers (same key) make the difference the exact quadratic form of the sample.
  """
  sde = sde_lib.VESDE(sigma_max=5.0) if loss_name == "smld" else sde_lib.VPSDE()
  eps = 1e-3
  score, x0 = _gaussian_setup(sde)
  sampler = losses.make_time_sampler(
    sde, eps, losses.importance_density_for(sde, target, likelihood) if importance else None
  )

  def pred(delta):
    def fn(x, t):
      exact = targets.convert(score(x, t), x, targets.path_coeffs(sde, t), "score", target)
      return exact + delta * jnp.cos(3.0 * x + t[:, None])

    return fn

  loss = losses.get_loss(loss_name)
  value = lambda d: float(
    loss(
      jax.random.key(1),
      pred(d),
      x0,
      sde,
      target=target,
      reduce_mean=True,
      likelihood_weighting=likelihood,
      time_sampler=sampler,
      eps=eps,
    )[0]
  )
  base = value(0.0)
  assert np.isfinite(base)
  for delta in (-0.2, 0.2):
    assert value(delta) > base


def test_importance_sampling_is_unbiased():
  """With density pi ~ g^2/s^2 on VP, E_pi[w(t) h(t)] equals the uniform average of lambda(t) h(t)."""
  sde, eps = sde_lib.VPSDE(), 1e-3
  sampler = losses.make_time_sampler(sde, eps, losses.importance_density_for(sde, "eps", True))
  t = sampler.sample(jax.random.key(0), 400000)
  lam = lambda t: losses.loss_weight(sde, t, "eps", True)
  h = lambda t: jnp.sin(5 * t) + 1.5
  is_vals = lam(t) * h(t) / (sampler.density(t) * (sde.T - eps))
  grid = jnp.linspace(eps, 1.0, 2_000_001)
  exact = float(jnp.mean(lam(grid) * h(grid)))
  se = float(jnp.std(is_vals)) / np.sqrt(t.shape[0])
  assert abs(float(jnp.mean(is_vals)) - exact) < 4 * se + 1e-3 * exact
  # Importance sampling exists to reduce variance: compare with uniform t.
  tu = eps + (1 - eps) * jax.random.uniform(jax.random.key(1), (400000,))
  assert float(jnp.std(is_vals)) < 0.5 * float(jnp.std(lam(tu) * h(tu)))


def test_time_sampler_density_integrates_to_one():
  sde = sde_lib.VESDE()
  sampler = losses.make_time_sampler(sde, 1e-5, lambda t: 1.0 / t)
  grid = np.exp(np.linspace(np.log(1e-5), 0.0, 200001))
  dens = np.asarray(sampler.density(jnp.asarray(grid, jnp.float32)))
  integral = np.sum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))
  assert abs(integral - 1.0) < 1e-3


def test_loss_and_target_errors():
  with pytest.raises(ValueError, match="unknown loss 'no_such'; choose from"):
    losses.get_loss("no_such")
  with pytest.raises(ValueError, match="unknown prediction target 'no_such'"):
    targets.to_eps(
      jnp.ones((1, 2)),
      jnp.ones((1, 2)),
      targets.path_coeffs(sde_lib.VPSDE(), jnp.ones(1) * 0.5),
      "no_such",
    )
  with pytest.raises(ValueError, match="needs the vpsde"):
    losses.ddpm_loss(jax.random.key(0), lambda x, t: x, jnp.ones((2, 2)), sde_lib.SubVPSDE())


@pytest.mark.parametrize("loss_name", ["dsm", "smld", "ddpm"])
def test_sum_reduction_is_half_the_sum_as_in_the_release(loss_name):
  """A prediction off by exactly 1 in each of the D = 12 data dimensions (in the loss's own
  residual) costs D / 2 = 6 per sample with reduce_mean=False (the release's 0.5 * sum) and 1 with
  reduce_mean=True."""
  sde = sde_lib.VESDE(sigma_max=5.0) if loss_name == "smld" else sde_lib.VPSDE()
  x0 = jax.random.normal(jax.random.key(3), (4, 3, 2, 2))
  b = lambda v: v[:, None, None, None]

  def level(t):  # the discrete losses query the network at t_i = i T / (N - 1)
    return jnp.round(t * (sde.N - 1) / sde.T).astype(jnp.int32)

  def pred(x, t):
    if loss_name == "dsm":  # target eps: the noise itself, plus 1
      mean, std = sde.marginal_prob(x0, t)
      return (x - mean) / b(std) + 1.0
    if loss_name == "smld":  # sigma_i score + z = 1
      sigma = b(sde.discrete_sigmas[level(t)])
      return (1.0 - (x - x0) / sigma) / sigma
    abar = b(sde.alphas_cumprod[level(t)])  # ddpm: eps + 1
    return (x - jnp.sqrt(abar) * x0) / jnp.sqrt(1.0 - abar) + 1.0

  loss = losses.get_loss(loss_name)
  for reduce_mean, want in ((False, 6.0), (True, 1.0)):
    kw = dict(target="eps") if loss_name == "dsm" else {}
    value, per_sample = loss(jax.random.key(0), pred, x0, sde, reduce_mean=reduce_mean, **kw)
    np.testing.assert_allclose(np.asarray(per_sample), want, rtol=1e-3)
    np.testing.assert_allclose(float(value), want, rtol=1e-3)


def test_smld_loss_feeds_the_release_level_index():
  """Issue 11, deviation 1: through the runner's loss (configs/ve/ncsn/cifar10.py, N = 10), the
  network sees the int32 level index k and reads sigma_k from its table. A network that returns
  the exact score of N(x0, sigma_k^2 I), -(x - x0) / sigma_k^2, has zero SMLD loss exactly when
  sigma_k is the sigma the loss perturbed with, i.e. when k = N - 1 - i for chain step i."""
  import os

  from score_sde import runner_utils as ru
  from score_sde.models.noise_levels import is_level, label_sigma

  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  config = ru.load_config(os.path.join(root, "configs", "ve", "ncsn", "cifar10.py"))
  sde = ru.build_sde(config)
  x0 = jax.random.uniform(jax.random.key(0), (64, 4, 4, 3))
  seen = []

  def exact_score(flip):
    class ExactScore:
      def apply(self, variables, x, label, train=False, rngs=None):
        assert is_level(label), label.dtype
        seen.append(label)
        k = sde.N - 1 - label if flip else label
        sigma = label_sigma(k, config.sde.sigma_min, config.sde.sigma_max, sde.N)
        return -(x - x0) / sigma[:, None, None, None] ** 2

    return ExactScore()

  loss, per_sample = ru.make_loss_fn(config, exact_score(False), sde)(jax.random.key(1), {}, x0)
  np.testing.assert_allclose(np.asarray(per_sample), 0.0, atol=1e-4)
  assert float(loss) < 1e-5
  assert set(np.asarray(seen[0]).tolist()) == set(range(sde.N))  # 64 draws cover the 10 levels
  # Read in the opposite direction (sigma of level i for chain step i), the same labels cost a lot.
  loss, _ = ru.make_loss_fn(config, exact_score(True), sde)(jax.random.key(1), {}, x0)
  assert float(loss) > 1.0
