"""On-device likelihood (one diffrax solve in jit) vs the 2021 release's host-driven solve_ivp.

    python experiments/likelihood_speed.py          # ~2-4 min on 2 CPU cores

The 2021 release computed log p with `scipy.integrate.solve_ivp(method='RK45')`: each of the
solver's function calls moved the whole state (batch and log-density term) from numpy to the
device, ran a jitted drift + Hutchinson divergence, and copied the result back. Here both sides
use the same score function, the same batch, the same Rademacher probe, the same rtol = atol and
the same tableau (diffrax Dopri5 = scipy RK45, Dormand-Prince 5(4)) and the same error norm (RMS
over the whole flattened batch, `per_sample_tolerance=False`); Tsit5 is listed too, and last the
library default (Tsit5 with the per-sample error norm, which takes more steps to hold every
sample to the tolerance).
Compilation is excluded from both timings (each side is warmed up once). Models:

  gmm_16d:     exact score of a 16-D Gaussian mixture (score_sde.gmm), batch 256;
  mlp_2d:      score_sde 'mlp' network (random initial parameters), 2-D, batch 1024;
  small_unet:  score_sde 'small_unet' network (random initial parameters), 16x16x1, batch 32.

Writes experiments/results/likelihood_speed.json.
"""

import argparse
import json
import os
import time

import jax  # noqa: E402

jax.config.update(
  "jax_cpu_enable_async_dispatch", False
)  # see likelihood_check.py (jax-ml/jax#25861)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from scipy import integrate  # noqa: E402

from score_sde import gmm, likelihood, models, ode, sde as sde_lib  # noqa: E402
from score_sde.models import utils as mutils  # noqa: E402

EPS = 1e-5


def network_score(name, kwargs, shape, sde, key):
  net = models.build_model(name, kwargs)
  params = net.init(
    {"params": key, "dropout": key}, jnp.zeros((1,) + shape), jnp.ones((1,)), train=False
  )["params"]
  apply = lambda x, label: net.apply({"params": params}, x, label, train=False)
  return mutils.score_fn_from_model(apply, sde, "auto")


def cases(sde):
  key = jax.random.key(0)
  g = gmm.random_mixture(key, 5, 16, scale=1.0, min_std=0.2, max_std=0.6)
  x = g.sample(jax.random.key(1), 256)
  yield "gmm_16d", gmm.marginal_score_fn(g, sde), x
  yield (
    "mlp_2d",
    network_score("mlp", dict(hidden=128, num_layers=3), (2,), sde, key),
    jax.random.normal(jax.random.key(2), (1024, 2)),
  )
  yield (
    "small_unet",
    network_score(
      "small_unet", dict(nf=16, ch_mult=(1, 2), num_res_blocks=1), (16, 16, 1), sde, key
    ),
    jax.random.uniform(jax.random.key(3), (32, 16, 16, 1), minval=-1, maxval=1),
  )


def timed(fn, repeats):
  best = float("inf")
  for _ in range(repeats):
    t0 = time.perf_counter()
    out = fn()
    best = min(best, time.perf_counter() - t0)
  return best, out


def on_device(sde, score_fn, x, key, method, tol, repeats, per_sample=False):
  f = jax.jit(
    lambda k, x: likelihood.log_likelihood(
      k,
      sde,
      score_fn,
      x,
      method=method,
      rtol=tol,
      atol=tol,
      eps=EPS,
      per_sample_tolerance=per_sample,
    )
  )
  jax.block_until_ready(f(key, x))
  wall, (logp, _, nfe) = timed(lambda: jax.block_until_ready(f(key, x)), repeats)
  return wall, np.asarray(logp), int(nfe)


def host_driven(sde, score_fn, x, key, tol, repeats):
  """The 2021 release's loop: scipy RK45 on a flat numpy state, one jitted call per evaluation."""
  shape, b = x.shape, x.shape[0]
  probe = likelihood.rademacher_probe(key, shape, x.dtype)  # the same probe as on device
  drift = ode.probability_flow_drift(sde, score_fn)

  @jax.jit
  def field(t, flat):
    xs = flat[:-b].reshape(shape)
    dx, div = likelihood.hutchinson_divergence(lambda y: drift(t, y), xs, probe)
    return jnp.concatenate([dx.reshape(-1), div])

  def ode_func(t, y):
    return np.asarray(field(jnp.asarray(t, jnp.float32), jnp.asarray(y, jnp.float32)), np.float64)

  init = np.concatenate([np.asarray(x).reshape(-1), np.zeros(b)]).astype(np.float64)
  ode_func(EPS, init)  # compile

  def solve():
    sol = integrate.solve_ivp(ode_func, (EPS, sde.T), init, rtol=tol, atol=tol, method="RK45")
    return sol

  wall, sol = timed(solve, repeats)
  zp = sol.y[:, -1]
  z = jnp.asarray(zp[:-b].reshape(shape), jnp.float32)
  logp = np.asarray(sde.prior_logp(z)) + zp[-b:]
  return wall, logp, int(sol.nfev)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--tol", type=float, default=1e-5)
  ap.add_argument("--repeats", type=int, default=2)
  ap.add_argument("--out", default="experiments/results/likelihood_speed.json")
  args = ap.parse_args()
  sde = sde_lib.get_sde("vpsde")
  key = jax.random.key(7)
  rows = []
  print(
    f"VP SDE, rtol = atol = {args.tol}, Rademacher probe, float32, backend {jax.default_backend()}"
  )
  print(
    f"{'model':11s} {'batch':>5s} {'scipy RK45 s':>12s} {'nfe':>5s} {'dopri5 s':>9s} {'nfe':>5s} "
    f"{'ratio':>6s} {'tsit5 s':>8s} {'nfe':>5s} {'ratio':>6s} {'max |dlogp|/D':>13s} "
    f"{'tsit5 per-sample s':>18s} {'nfe':>5s}"
  )
  for name, score_fn, x in cases(sde):
    d = int(np.prod(x.shape[1:]))
    t_host, lp_host, nfe_host = host_driven(sde, score_fn, x, key, args.tol, args.repeats)
    t_dp, lp_dp, nfe_dp = on_device(sde, score_fn, x, key, "dopri5", args.tol, args.repeats)
    t_ts, lp_ts, nfe_ts = on_device(sde, score_fn, x, key, "tsit5", args.tol, args.repeats)
    t_ps, _, nfe_ps = on_device(
      sde, score_fn, x, key, "tsit5", args.tol, args.repeats, per_sample=True
    )
    row = dict(
      model=name,
      batch=int(x.shape[0]),
      dim=d,
      tol=args.tol,
      scipy_rk45_s=t_host,
      scipy_nfe=nfe_host,
      dopri5_s=t_dp,
      dopri5_nfe=nfe_dp,
      tsit5_s=t_ts,
      tsit5_nfe=nfe_ts,
      tsit5_per_sample_s=t_ps,
      tsit5_per_sample_nfe=nfe_ps,
      ratio_dopri5=t_host / t_dp,
      ratio_tsit5=t_host / t_ts,
      max_abs_logp_diff_per_dim=float(np.max(np.abs(lp_dp - lp_host)) / d),
      mean_logp_per_dim_scipy=float(np.mean(lp_host) / d),
      mean_logp_per_dim_dopri5=float(np.mean(lp_dp) / d),
    )
    rows.append(row)
    print(
      f"{name:11s} {row['batch']:5d} {t_host:12.3f} {nfe_host:5d} {t_dp:9.3f} {nfe_dp:5d} "
      f"{row['ratio_dopri5']:6.1f} {t_ts:8.3f} {nfe_ts:5d} {row['ratio_tsit5']:6.1f} "
      f"{row['max_abs_logp_diff_per_dim']:13.2e} {t_ps:18.3f} {nfe_ps:5d}",
      flush=True,
    )
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(
      {"backend": jax.default_backend(), "device": str(jax.devices()[0]), "rows": rows}, f, indent=1
    )
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
