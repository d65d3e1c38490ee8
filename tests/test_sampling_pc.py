"""Predictor-corrector samplers (paper Algorithms 1-5) against the exact score of Gaussian mixtures.

With x0 ~ sum_k w_k N(mu_k, C_k), the marginal score under every linear SDE is closed-form
(score_sde.gmm), so a sampler driven by it should return the mixture itself, up to its
discretisation error. Samples are assigned to their most probable component (the components are
about 8 standard deviations apart, so misassignment is negligible) and the per-component weights,
means and covariances are compared with the truth, with tolerances of 5 standard errors of the
estimate at this sample size plus a small allowance for the discretisation:
  SE(w_k) = sqrt(w_k (1 - w_k) / n),   SE(mean_kj) = sqrt(C_kjj / n_k),
  SE(cov_kij) = sqrt((C_kii C_kjj + C_kij^2) / n_k)          (Gaussian sample covariance).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from score_sde import gmm as G
from score_sde.sampling import pc
from score_sde.sampling.dispatch import sampler_from_config
from score_sde.sampling.pc import pc_sample
from score_sde.sde import VESDE, VPSDE, SubVPSDE, cosine_path

N_SAMPLES = 4000
NUM_STEPS = 300
# VE: sigma_max above the largest distance between data points is enough (Song & Ermon 2020,
# technique 1) and keeps the number of steps small.
SDES = {"vp": VPSDE(), "subvp": SubVPSDE(), "ve": VESDE(sigma_min=0.01, sigma_max=10.0)}


def separated_mixture(dim: int) -> G.GaussianMixture:
  """Three unequal-weight, anisotropic components with means >= 3.2 apart and stds in [0.2, 0.45]."""
  means = np.zeros((3, dim), np.float32)
  means[0, 0], means[1, 0], means[2, 1] = -2.0, 2.0, 2.5
  rng = np.random.default_rng(0)
  covs = []
  for _ in range(3):
    q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    covs.append((q * rng.uniform(0.2, 0.45, size=dim) ** 2) @ q.T)
  return G.GaussianMixture(
    jnp.array([0.5, 0.3, 0.2]), jnp.asarray(means), jnp.asarray(np.array(covs, np.float32))
  )


def assert_reproduces(g: G.GaussianMixture, x, *, rel_mean=0.05, rel_cov=0.08, z=5.0):
  """Component weights, means and covariances of samples x: [n, D] match g within z standard
  errors plus `rel_mean` (of the std) / `rel_cov` (of sqrt(C_ii C_jj)) for the discretisation."""
  x = np.asarray(x, np.float64)
  assert np.all(np.isfinite(x))
  n = len(x)
  label = np.asarray(jnp.argmax(g.component_logps(jnp.asarray(x, jnp.float32)), -1))
  for k in range(len(g.weights)):
    w, mu, cov = float(g.weights[k]), np.asarray(g.means[k]), np.asarray(g.covs[k], np.float64)
    xk = x[label == k]
    nk, std = w * n, np.sqrt(np.diag(cov))
    err_w = abs(len(xk) / n - w)
    assert err_w <= z * np.sqrt(w * (1 - w) / n) + 0.01, (
      f"component {k}: weight {len(xk) / n} vs {w}"
    )
    err_m = np.abs(xk.mean(0) - mu)
    assert np.all(err_m <= z * std / np.sqrt(nk) + rel_mean * std), (
      f"component {k}: mean {xk.mean(0)} vs {mu}"
    )
    scale = np.outer(std, std)
    err_c = np.abs(np.cov(xk.T) - cov)
    se_c = np.sqrt((scale**2 + cov**2) / nk)
    assert np.all(err_c <= z * se_c + rel_cov * scale), (
      f"component {k}: cov {np.cov(xk.T)} vs {cov}"
    )


def _sample_fn(
  sde_name,
  predictor,
  corrector,
  *,
  dim=2,
  snr=0.16,
  n_steps=1,
  num_steps=NUM_STEPS,
  probability_flow=False,
  eps=1e-3,
):
  """k -> N_SAMPLES samples of the separated mixture (noise removal on)."""
  sde = SDES[sde_name]
  score_fn = G.marginal_score_fn(separated_mixture(dim), sde)
  return lambda k: pc_sample(
    k,
    sde,
    score_fn,
    (N_SAMPLES, dim),
    predictor=predictor,
    corrector=corrector,
    snr=snr,
    n_steps=n_steps,
    num_steps=num_steps,
    eps=eps,
    denoise=True,
    probability_flow=probability_flow,
  )[0]


def sample(sde_name, predictor, corrector, *, dim=2, key=1, **opts):
  """(mixture, N_SAMPLES samples of it) from the sampler with these settings."""
  fn = jax.jit(_sample_fn(sde_name, predictor, corrector, dim=dim, **opts))
  return separated_mixture(dim), fn(jax.random.key(key))


# (sde, predictor, corrector, options): every predictor, corrector and SDE at least once, and the
# probability-flow forms, in 2-D; the full grid (every valid combination, 2-D and 4-D) is marked
# slow.
FAST = [
  ("vp", "euler_maruyama", "none", {}),
  ("vp", "reverse_diffusion", "langevin", {}),
  ("vp", "ancestral_sampling", "none", {}),
  ("subvp", "euler_maruyama", "langevin", {}),
  ("ve", "reverse_diffusion", "none", {}),
  ("ve", "ancestral_sampling", "ald", {}),
  ("ve", "none", "ald", dict(snr=0.3, n_steps=3)),  # NCSN's annealed Langevin dynamics
  ("vp", "none", "langevin", dict(snr=0.2, n_steps=5)),  # corrector only
  ("vp", "euler_maruyama", "none", dict(probability_flow=True)),
  ("ve", "reverse_diffusion", "none", dict(probability_flow=True)),
]


def _grid():
  out = []
  for sde_name in SDES:
    for p in pc.PREDICTORS:
      if p == "ancestral_sampling" and sde_name == "subvp":
        continue
      for c in pc.CORRECTORS:
        if p == "none" and c == "none":
          continue
        if (sde_name, p, c) == ("subvp", "none", "ald"):
          # Without a predictor, the samples follow the moving marginal only through Langevin
          # steps ~ s(t)^2, and sub-VP's s(t) vanishes like t: they freeze near t ~ 0.1 with
          # means shrunk by a(0.1) ~ 0.93 (measured: ~10 standard errors, at 300 or 600 steps).
          continue
        # Corrector only: Langevin's stationary bias grows like snr^2, annealed Langevin (whose
        # steps shrink with s(t)^2) needs the larger snr to carry the prior to the data.
        opts = dict(snr=0.2 if c == "langevin" else 0.3, n_steps=5) if p == "none" else {}
        for dim in (2, 4):
          out.append((sde_name, p, c, dict(opts, dim=dim)))
        if p in ("euler_maruyama", "reverse_diffusion"):
          out.append((sde_name, p, c, dict(opts, probability_flow=True)))
  return out


def _id(case):
  sde_name, p, c, opts = case
  return "-".join([sde_name, p, c] + [f"{k}={v}" for k, v in sorted(opts.items())])


# The check must be able to fail: stopping at t = 0.05 leaves VP noise of variance ~ 0.05.
EARLY_STOP = ("vp", "euler_maruyama", "none", dict(eps=0.05))


@pytest.fixture(scope="module")
def fast_samples():
  """{case id: samples} of every FAST case and EARLY_STOP, key 1: one compilation for all (less
  compile time than one per case)."""
  cases = FAST + [EARLY_STOP]
  fns = {_id(c): _sample_fn(*c[:3], **c[3]) for c in cases}
  runs = jax.jit(lambda k: {name: f(k) for name, f in fns.items()})(jax.random.key(1))
  return jax.tree.map(np.asarray, runs)


@pytest.mark.parametrize("case", FAST, ids=_id)
def test_pc_sampler_reproduces_mixture(case, fast_samples):
  assert_reproduces(separated_mixture(case[3].get("dim", 2)), fast_samples[_id(case)])


@pytest.mark.slow
@pytest.mark.parametrize("case", _grid(), ids=_id)
def test_pc_sampler_reproduces_mixture_full_grid(case):
  sde_name, predictor, corrector, opts = case
  g, x = sample(sde_name, predictor, corrector, **opts)
  assert_reproduces(g, x)


def test_check_detects_a_wrong_distribution(fast_samples):
  """The tolerances can fail: stopping at t = 0.05 leaves VP noise of variance ~ 0.05 on the data."""
  with pytest.raises(AssertionError):
    assert_reproduces(separated_mixture(2), fast_samples[_id(EARLY_STOP)])


def _forbidden_score(x, t):
  raise AssertionError("the score was evaluated before the configuration was checked")


@pytest.mark.parametrize(
  "sde,kwargs,match",
  [
    (SubVPSDE(), dict(predictor="ancestral_sampling"), "ancestral"),
    (cosine_path(), dict(predictor="ancestral_sampling"), "ancestral"),
    (VPSDE(), dict(predictor="ancestral_sampling", probability_flow=True), "probability-flow"),
    (VPSDE(), dict(predictor="no_such"), r"unknown predictor 'no_such'; choose from \["),
    (VESDE(), dict(corrector="no_such"), r"unknown corrector 'no_such'; choose from \["),
  ],
)
def test_invalid_combinations_fail_before_compute(sde, kwargs, match):
  with pytest.raises(ValueError, match=match):
    pc_sample(jax.random.key(0), sde, _forbidden_score, (4, 2), num_steps=5, **kwargs)


def _sampling_config(**overrides):
  from score_sde.config_defaults import get_default_config

  cfg = get_default_config().sampling
  cfg.update(overrides)
  return cfg


@pytest.mark.parametrize(
  "overrides,match",
  [
    (dict(method="no_such"), r"unknown sampling method 'no_such'; choose from \["),
    (dict(predictor="ancestral_sampling"), "ancestral"),
    (dict(corrector="no_such"), "unknown corrector"),
  ],
)
def test_config_errors_name_the_valid_choices(overrides, match):
  with pytest.raises(ValueError, match=match):
    sampler_from_config(_sampling_config(**overrides), SubVPSDE())


NFE_CASES = [
  ("euler_maruyama", "langevin", 2),
  ("reverse_diffusion", "none", 1),
  ("none", "ald", 3),
  ("ancestral_sampling", "langevin", 1),
]


@pytest.fixture(scope="module")
def nfe_counts():
  """{case: (reported nfe, score evaluations counted)}, 23 steps; one compilation for all."""
  sde = VPSDE()
  exact = G.marginal_score_fn(separated_mixture(2), sde)
  calls = {case: [] for case in NFE_CASES}

  def counting_score(case):
    def score(x, t):
      jax.debug.callback(lambda: calls[case].append(1))
      return exact(x, t)

    return score

  def runs(k):
    return {
      case: pc_sample(
        k,
        sde,
        counting_score(case),
        (3, 2),
        predictor=case[0],
        corrector=case[1],
        n_steps=case[2],
        num_steps=23,
      )
      for case in NFE_CASES
    }

  out = jax.block_until_ready(jax.jit(runs)(jax.random.key(0)))
  jax.effects_barrier()
  return {case: (int(nfe), len(calls[case])) for case, (_, nfe) in out.items()}


@pytest.mark.parametrize("predictor,corrector,n_steps", NFE_CASES)
def test_nfe_is_the_number_of_score_evaluations(predictor, corrector, n_steps, nfe_counts):
  nfe, calls = nfe_counts[(predictor, corrector, n_steps)]
  assert nfe == calls == 23 * ((predictor != "none") + (corrector != "none") * n_steps)


def test_same_key_same_samples():
  sde = SDES["vp"]
  score = G.marginal_score_fn(separated_mixture(2), sde)
  kw = dict(predictor="reverse_diffusion", corrector="langevin")
  run = jax.jit(lambda k: pc_sample(k, sde, score, (64, 2), num_steps=50, **kw)[0])
  a, b = run(jax.random.key(3)), run(jax.random.key(3))
  np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert not np.allclose(np.asarray(a), np.asarray(run(jax.random.key(4))))


@pytest.mark.parametrize("predictor", ["euler_maruyama", "reverse_diffusion"])
def test_probability_flow_depends_only_on_the_prior_draw(predictor):
  """After x_T is drawn, a probability-flow predictor uses no noise: replacing every key left in
  the loop's state leaves the samples unchanged, while it changes those of the reverse SDE."""
  sde = SDES["vp"]
  score = G.marginal_score_fn(separated_mixture(2), sde)

  def loop_and_carries(probability_flow):
    """The loop and its carries (as drawn, every key swapped), stacked on a leading axis."""
    loop = pc.pc_sampler(
      sde,
      score,
      (64, 2),
      predictor=predictor,
      corrector="none",
      num_steps=50,
      probability_flow=probability_flow,
    )
    carry = loop.init(jax.random.key(5))
    swapped = jax.tree.map(
      lambda v: jax.random.key(99) if jnp.issubdtype(v.dtype, jax.dtypes.prng_key) else v, carry
    )
    return loop, jax.tree.map(lambda a, b: jnp.stack([a, b]), carry, swapped)

  loops = {pf: loop_and_carries(pf) for pf in (True, False)}

  def runs(carries):
    """Both carries through one copy of each loop (vmap): one compilation for everything."""
    out = {}
    for pf, (loop, _) in loops.items():
      run = lambda c: loop.output(loop.run(c, jnp.arange(loop.num_steps)))[0]
      out[pf] = jax.vmap(run)(carries[pf])
    return out

  out = jax.jit(runs)({pf: c for pf, (_, c) in loops.items()})
  np.testing.assert_array_equal(*np.asarray(out[True]))
  assert not np.allclose(*np.asarray(out[False]))


DDPM_CHAIN_CASES = [
  ("reverse_diffusion", "none", "vp"),
  ("ancestral_sampling", "none", "vp"),
  ("euler_maruyama", "langevin", "subvp"),
]


@pytest.fixture(scope="module")
def chain_runs_25_steps():
  """{case: samples} with 25 steps (just above beta_max = 20); one compilation for all."""
  runs = lambda k: {
    case: pc_sample(
      k,
      SDES[case[2]],
      lambda x, t: -x,
      (4, 2),
      predictor=case[0],
      corrector=case[1],
      num_steps=25,
    )[0]
    for case in DDPM_CHAIN_CASES
  }
  return jax.tree.map(np.asarray, jax.jit(runs)(jax.random.key(0)))


@pytest.mark.parametrize("predictor,corrector,sde_name", DDPM_CHAIN_CASES)
def test_too_few_steps_for_the_ddpm_chain_fail_clearly(
  predictor, corrector, sde_name, chain_runs_25_steps
):
  """beta_max / num_steps >= 1 would make the DDPM betas exceed 1 (NaN samples): refused up front."""
  sde = SDES[sde_name]
  with pytest.raises(ValueError, match="num_steps > 20"):
    pc.pc_sampler(
      sde, lambda x, t: -x, (4, 2), predictor=predictor, corrector=corrector, num_steps=10
    )
  assert np.all(np.isfinite(chain_runs_25_steps[(predictor, corrector, sde_name)]))
