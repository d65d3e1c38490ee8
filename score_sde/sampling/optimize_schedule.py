"""Optimized time schedules: step locations that minimize a sampler's error against a tight solve.

For a fixed-step sampler x_eps = S(x_T; sigma_0 > ... > sigma_n) (sigma = s / a), the interior
sigmas are chosen to minimize the path error on a small batch of starting states,

    L(sigma) = mean_b || S(x_T^b; sigma) - x_ref^b ||^2,   x_ref = a tight probability-flow solve,

by Adam on a parametrization that keeps the grid decreasing with fixed end points:

    log sigma_i = log sigma_0 + (log sigma_n - log sigma_0) sum_{j < i} softmax(theta)_j.

The gradient flows through the whole sampler (its steps are differentiable in the grid). The
result is written as JSON (`sigmas`, plus what it was fitted for) that `sampling.schedule` loads
(see `schedules.from_file`). Command line (exact score of the benchmark mixtures; for a trained
model, `optimize` takes any `score_fn`):

    python -m score_sde.sampling.optimize_schedule --problem gmm64 --sampler unipc --order 3 \\
        --nfe 10 --out schedule_unipc3_nfe10.json
"""

import argparse
import json
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from score_sde import ode
from score_sde.sampling import schedules
from score_sde.sde import LinearSDE


def sigmas_from_logits(theta, log_sigma_max, log_sigma_min):
  """Decreasing sigmas [len(theta) + 1] from exp(log_sigma_max) to exp(log_sigma_min)."""
  frac = jnp.concatenate([jnp.zeros(1, theta.dtype), jnp.cumsum(jax.nn.softmax(theta))])
  return jnp.exp(log_sigma_max + (log_sigma_min - log_sigma_max) * frac)


def logits_from_sigmas(sigmas):
  """theta with sigmas_from_logits(theta, ...) = sigmas (up to the softmax's shift)."""
  return jnp.log(-jnp.diff(jnp.log(sigmas)))


def tight_solve(sde: LinearSDE, score_fn, x_T, eps: float, tol: float = 1e-7):
  """The reference: the probability-flow ODE from T to eps by tsit5 at rtol = atol = tol with the
  per-sample error norm."""
  return ode.solve_probability_flow(
    sde,
    score_fn,
    x_T,
    sde.T,
    eps,
    method="tsit5",
    rtol=tol,
    atol=tol,
    norm=ode.per_sample_max_norm,
    max_steps=100000,
  )[0]


def optimize(
  sample_with_grid: Callable,
  sde: LinearSDE,
  x_T,
  x_ref,
  num_steps: int,
  eps: float,
  *,
  init: str = "karras",
  rho: float = 7.0,
  iters: int = 300,
  lr: float = 0.05,
  log: Optional[Callable] = None,
):
  """Sigmas [num_steps + 1] minimizing mean ||sample_with_grid(ts, x_T) - x_ref||^2.

  sample_with_grid(ts: [num_steps + 1] time grid, x_T: [B, ...]) -> x_eps: [B, ...].
  Starts from the `init` schedule; returns (sigmas: np.ndarray, history of (iter, loss)).
  """
  ts0 = schedules.time_grid(sde, num_steps, eps, init, rho=rho)
  s0 = sde.sigma(ts0)
  lo, hi = jnp.log(s0[-1]), jnp.log(s0[0])

  def grid(theta):
    ts = sde.t_of_sigma(sigmas_from_logits(theta, hi, lo))
    return ts.at[0].set(sde.T).at[-1].set(eps)

  def loss(theta):
    x = sample_with_grid(grid(theta), x_T)
    return jnp.mean(jnp.sum((x - x_ref).reshape(x.shape[0], -1) ** 2, -1))

  opt = optax.adam(lr)
  theta = logits_from_sigmas(s0)
  state = opt.init(theta)

  @jax.jit
  def update(theta, state):
    val, grad = jax.value_and_grad(loss)(theta)
    grad = jnp.where(jnp.isfinite(grad), grad, 0.0)
    upd, state = opt.update(grad, state)
    return optax.apply_updates(theta, upd), state, val

  history, best = [], (np.inf, theta)
  for it in range(iters):
    new, state, val = update(theta, state)
    val = float(val)
    if val < best[0]:
      best = (val, theta)
    if log is not None and (it % 50 == 0 or it == iters - 1):
      log(f"iter {it:4d}  path MSE {val:.5g}")
    history.append((it, val))
    theta = new
  return np.asarray(sigmas_from_logits(best[1], hi, lo)), history


def write(path: str, sigmas, **meta):
  """Writes the schedule file `sampling.schedule` reads."""
  with open(path, "w") as f:
    json.dump(dict(sigmas=[float(v) for v in sigmas], **meta), f, indent=1)


def benchmark_problem(name: str):
  """(mixture, sde, eps) of the fast-sampler benchmark (issue 10): 'gmm64', 16 isotropic
  components of std 0.5 in 64-D, means ~ N(0, 2^2), Dirichlet weights, VE with sigma in
  [0.002, 80] (eps = 0: sigma(0) = sigma_min); 'ring2d', 8 components of std 0.3 on a circle of
  radius 2, same SDE."""
  from score_sde import gmm as G
  from score_sde.sde import VESDE

  sde = VESDE(sigma_min=0.002, sigma_max=80.0)
  if name == "gmm64":
    g = G.random_mixture(jax.random.key(1), 16, 64, scale=2.0, min_std=0.5, max_std=0.5)
  elif name == "ring2d":
    g = G.ring_mixture(8)
  else:
    raise ValueError(f"unknown problem {name!r}; choose from ['gmm64', 'ring2d']")
  dt = jnp.result_type(float)
  g = G.GaussianMixture(g.weights.astype(dt), g.means.astype(dt), g.covs.astype(dt))
  return g, sde, 0.0


def sampler_with_grid(name: str, sde: LinearSDE, score_fn, shape, **opts):
  """sample_with_grid(ts, x_T) for sampler `name` of the sampler table with options `opts`."""
  from score_sde.sampling import dispatch
  from score_sde.sampling.base import one_shot, run_loop

  entry = dispatch.get_sampler(name)

  def sample(ts, x_T):
    if entry.loop is not None:
      loop = entry.loop(sde, score_fn, shape, schedule=ts, x_init=x_T, **opts)
    else:
      loop = one_shot(
        lambda k: entry.sample(k, sde, score_fn, shape, schedule=ts, x_init=x_T, **opts), None
      )
    return run_loop(loop, jax.random.key(0))[0]

  return sample


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--problem", default="gmm64", help="gmm64 | ring2d (exact mixture scores)")
  p.add_argument("--sampler", default="unipc", help="a sampling.method with a fixed grid")
  p.add_argument("--order", type=int, default=None)
  p.add_argument("--num_steps", type=int, required=True)
  p.add_argument("--denoise", type=int, default=1, help="1: x0 prediction at the end (+1 NFE)")
  p.add_argument("--batch", type=int, default=256, help="starting states used for the fit")
  p.add_argument("--iters", type=int, default=300)
  p.add_argument("--lr", type=float, default=0.05)
  p.add_argument("--init", default="karras")
  p.add_argument("--out", required=True)
  args = p.parse_args(argv)
  jax.config.update("jax_enable_x64", True)
  from score_sde import gmm as G
  from score_sde.sampling.base import initial_state

  g, sde, eps = benchmark_problem(args.problem)
  score_fn = G.marginal_score_fn(g, sde)
  shape = (args.batch, g.dim)
  opts = dict(num_steps=args.num_steps, eps=eps, denoise=bool(args.denoise))
  if args.order is not None:
    opts["order"] = args.order
  x_T = initial_state(jax.random.key(123), sde, shape)  # not the benchmark's evaluation draw
  x_ref = jax.jit(lambda x: tight_solve(sde, score_fn, x, eps))(x_T)
  fn = sampler_with_grid(args.sampler, sde, score_fn, shape, **opts)
  sigmas, hist = optimize(
    fn,
    sde,
    x_T,
    x_ref,
    args.num_steps,
    eps,
    init=args.init,
    iters=args.iters,
    lr=args.lr,
    log=print,
  )
  write(
    args.out,
    sigmas,
    problem=args.problem,
    sampler=args.sampler,
    options={k: v for k, v in opts.items()},
    init=args.init,
    final_loss=hist[-1][1],
  )
  print("wrote", args.out)


if __name__ == "__main__":
  main()
