"""Estimated vs exact log-density of Gaussian mixtures, for each SDE, divergence and tolerance.

    python experiments/likelihood_check.py            # ~3-5 min on 2 CPU cores, float64
    python experiments/likelihood_check.py --quick    # one tolerance, fewer points

The score is the mixture's exact marginal score (score_sde.gmm.marginal_score_fn, matmuls only
inside the solver loop), so every error comes from the likelihood computation. The ODE starts at t = eps = 1e-5, where the density is
p_eps (the data convolved with N(0, s(eps)^2)), not p_0: the reference is the closed form
gmm.marginal_log_prob(gmm, sde, x, eps). Two errors are reported per dimension:

  err_exact_pT: log p_T(z) with the exact terminal marginal -- only ODE + divergence error;
  err_prior:    log p_T(z) with the model's N(0, prior_std^2) prior -- what a trained model gets;
                this adds the prior mismatch KL-like term (largest for VE with sigma_max = 50).

Hutchinson rows: one probe per data point and solve; `bias` is the mean signed error, `sd` the
spread over points (the estimator noise), `se` = sd / sqrt(n) the standard error of the bias.
Writes experiments/results/likelihood_check.json.
"""

import argparse
import json
import os
import time

import jax

jax.config.update("jax_enable_x64", True)
# These while-loop solves hung for good on XLA:CPU (every thread idle in BlockUntilReady) before
# score_sde/__init__.py turned off the concurrency-optimized scheduler; synchronous dispatch is
# a second guard (the CPU hang of jax-ml/jax#25861).
jax.config.update("jax_cpu_enable_async_dispatch", False)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from score_sde import gmm, likelihood, sde as sde_lib  # noqa: E402

EPS = 1e-5
SDES = {"vpsde": {}, "subvpsde": {}, "vesde": {"sigma_min": 0.01, "sigma_max": 50.0}}


def mixtures():
  ring = gmm.ring_mixture(num_components=8, radius=2.0, std=0.3)
  rand = gmm.random_mixture(jax.random.key(0), 5, 16, scale=1.0, min_std=0.2, max_std=0.6)
  cast = lambda g: gmm.GaussianMixture(
    *(jnp.asarray(a, jnp.float64) for a in (g.weights, g.means, g.covs))
  )
  return {"ring_2d": cast(ring), "random_16d": cast(rand)}


def check(g, s, x, divergence, tol, key):
  score_fn = gmm.marginal_score_fn(g, s)
  exact_pT = lambda z: gmm.marginal_log_prob(g, s, z, s.T)
  fn = jax.jit(
    lambda k, x: likelihood.log_likelihood(
      k, s, score_fn, x, divergence=divergence, rtol=tol, atol=tol, eps=EPS, prior_logp=exact_pT
    )
  )
  jax.block_until_ready(fn(key, x))  # compile
  t0 = time.perf_counter()
  logp, z, nfe = jax.block_until_ready(fn(key, x))
  wall = time.perf_counter() - t0
  d = x.shape[1]
  want = gmm.marginal_log_prob(g, s, x, EPS)
  err = np.asarray(logp - want) / d
  err_prior = np.asarray(logp - exact_pT(z) + s.prior_logp(z) - want) / d
  return {
    "est_per_dim": float(jnp.mean(logp) / d),
    "exact_per_dim": float(jnp.mean(want) / d),
    "bias_exact_pT": float(err.mean()),
    "mae_exact_pT": float(np.abs(err).mean()),
    "sd": float(err.std(ddof=1)),
    "se": float(err.std(ddof=1) / np.sqrt(len(err))),
    "bias_prior": float(err_prior.mean()),
    "mae_prior": float(np.abs(err_prior).mean()),
    "nfe": int(nfe),
    "wall_s": wall,
    "logp_eps_minus_logp0_per_dim": float(jnp.mean(want - g.log_prob(x)) / d),
  }


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--quick", action="store_true")
  ap.add_argument("--n", type=int, default=256, help="data points per mixture")
  ap.add_argument("--out", default="experiments/results/likelihood_check.json")
  args = ap.parse_args()
  tols = [1e-5] if args.quick else [1e-3, 1e-5, 1e-7]
  n = 64 if args.quick else args.n
  rows = []
  hdr = (
    f"{'mixture':11s} {'sde':8s} {'divergence':22s} {'tol':>6s} {'est/D':>9s} {'exact/D':>9s} "
    f"{'bias(pT)':>10s} {'mae(pT)':>9s} {'sd':>8s} {'bias(prior)':>11s} {'nfe':>5s} {'wall s':>7s}"
  )
  print(f"log p_eps(x) per dimension (nats), n = {n} points per mixture, eps = {EPS}, float64")
  print(hdr)
  for mname, g in mixtures().items():
    x = g.sample(jax.random.key(1), n)
    for sname, kw in SDES.items():
      s = sde_lib.get_sde(sname, **kw)
      for div in likelihood.DIVERGENCES:
        for tol in tols:
          r = check(g, s, x, div, tol, jax.random.key(2))
          r.update(mixture=mname, dim=g.dim, sde=sname, divergence=div, tol=tol, n=n)
          rows.append(r)
          print(
            f"{mname:11s} {sname:8s} {div:22s} {tol:6.0e} {r['est_per_dim']:9.4f} "
            f"{r['exact_per_dim']:9.4f} {r['bias_exact_pT']:10.2e} {r['mae_exact_pT']:9.2e} "
            f"{r['sd']:8.2e} {r['bias_prior']:11.2e} {r['nfe']:5d} {r['wall_s']:7.3f}",
            flush=True,
          )
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(
      {
        "eps": EPS,
        "dtype": "float64",
        "backend": jax.default_backend(),
        "reference": "gmm.marginal_log_prob at t = eps",
        "rows": rows,
      },
      f,
      indent=1,
    )
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
