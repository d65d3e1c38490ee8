"""Sampler x NFE -> sliced Wasserstein-2 distance to exact samples, on Gaussian mixtures.

The data are Gaussian mixtures (2-D ring of 8 and a random mixture in higher dimension), whose
marginal score under every linear SDE is closed-form (score_sde.gmm.marginal_score_fn), so the
distance left after sampling is the sampler's own discretisation error. Each row is a sampler at a
given number of score evaluations (NFE); the noise floor is the same distance between two
independent exact sample sets of the same size (the smallest distance this sample size can show).

    python experiments/sampler_nfe.py --quick      # CPU minutes
    python experiments/sampler_nfe.py              # full table

Writes experiments/results/sampler_nfe.json (or --out).

Path benchmark (issue 10): `--paths gmm64,ring2d` instead measures, for every deterministic
sampler and schedule, the path RMSE sqrt(mean_b ||x_b - x_ref_b||^2) against a tight
probability-flow solve from the same starting states (tsit5, rtol = atol = 1e-7, per-sample norm;
float64), and the sliced W2 to exact mixture samples, at each NFE. The problems are those of
`score_sde.sampling.optimize_schedule.benchmark_problem` (VE, sigma in [0.002, 80]); rows
`*_optimized` use the schedule files experiments/results/schedules/<problem>_<sampler>_nfe<N>.json
written by `python -m score_sde.sampling.optimize_schedule` (fitted on other starting states).
The baseline `dpmpp_2m_karras` is DPM-Solver++(2M) with its published weights, Karras rho = 7
sigmas, NFE - 1 steps and the final x0 prediction (k-diffusion's sample_dpmpp_2m).

    python experiments/sampler_nfe.py --paths gmm64 --nfes 10,20,50 --n 1000
"""

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp

from score_sde import gmm as G
from score_sde.metrics import sliced_wasserstein
from score_sde.sampling import pc
from score_sde.sampling.ddim import ddim_sample
from score_sde.sampling.edm import edm_heun_sample
from score_sde.sampling.ode_sampler import ode_sample
from score_sde.sde import VESDE, VPSDE, SubVPSDE

SDES = {"vp": VPSDE(), "subvp": SubVPSDE(), "ve": VESDE()}


def _pc(predictor, corrector, nfe_per_step):
  """PC sampler at `nfe` total evaluations (predictor + one corrector step per time step)."""

  def make(nfe):
    n = max(1, nfe // nfe_per_step)
    return lambda k, sde, sf, shape: pc.pc_sample(
      k,
      sde,
      sf,
      shape,
      predictor=predictor,
      corrector=corrector,
      num_steps=n,
      snr=0.16,
      n_steps=1,
      denoise=True,
    )

  return make


def _fixed_ode(method, evals):
  def make(nfe):
    return lambda k, sde, sf, shape: ode_sample(
      k, sde, sf, shape, method=method, num_steps=max(1, nfe // evals), schedule="uniform"
    )

  return make


# name -> (make(nfe) -> sampler, needs these PC names registered)
SAMPLERS = {
  "pc_euler_maruyama": (_pc("euler_maruyama", "none", 1), ("euler_maruyama", "none")),
  "pc_reverse_diffusion": (_pc("reverse_diffusion", "none", 1), ("reverse_diffusion", "none")),
  "pc_ancestral": (_pc("ancestral_sampling", "none", 1), ("ancestral_sampling", "none")),
  "pc_rd_langevin": (_pc("reverse_diffusion", "langevin", 2), ("reverse_diffusion", "langevin")),
  "ode_euler": (_fixed_ode("euler", 1), ()),
  "ode_heun": (_fixed_ode("heun", 2), ()),
  "edm_heun": (
    lambda nfe: (
      lambda k, sde, sf, shape: edm_heun_sample(k, sde, sf, shape, num_steps=max(1, nfe // 2))
    ),
    (),
  ),
  "ddim_eta0": (
    lambda nfe: lambda k, sde, sf, shape: ddim_sample(k, sde, sf, shape, num_steps=nfe),
    (),
  ),
  "ddim_eta1": (
    lambda nfe: lambda k, sde, sf, shape: ddim_sample(k, sde, sf, shape, num_steps=nfe, eta=1.0),
    (),
  ),
}
TSIT5_TOLS = (1e-2, 1e-3, 1e-5)


def _registered(names):
  known = set(pc.PREDICTORS) | set(pc.CORRECTORS)
  return [n for n in names if n not in known]


def run(datasets, nfes, n, seed, log):
  rows, skipped = [], []
  for data_name, g in datasets.items():
    exact = g.sample(jax.random.key(seed + 1), n)
    floor = float(
      sliced_wasserstein(jax.random.key(7), exact, g.sample(jax.random.key(seed + 2), n))
    )
    for sde_name, sde in SDES.items():
      sf = G.marginal_score_fn(g, sde)
      shape = (n, g.dim)
      jobs = [
        (
          f"ode_tsit5_tol{tol:g}",
          lambda tol=tol: (
            lambda k, sde, sf, shape: ode_sample(k, sde, sf, shape, rtol=tol, atol=tol)
          ),
        )
        for tol in TSIT5_TOLS
      ]
      for name, (make, needs) in SAMPLERS.items():
        missing = _registered(needs)
        if missing:
          skipped.append(f"{name}: {missing} not registered in score_sde.sampling.pc")
          continue
        if name == "pc_ancestral" and sde.chain is None:
          continue  # ancestral sampling needs a discrete chain (VP: DDPM, VE: SMLD)
        for nfe in nfes:
          jobs.append((f"{name}@{nfe}", lambda make=make, nfe=nfe: make(nfe)))
      for label, build in jobs:
        fn = build()
        t0 = time.perf_counter()
        try:
          x, used = jax.jit(lambda k: fn(k, sde, sf, shape))(jax.random.key(seed))
        except ValueError as e:  # e.g. too few steps for the DDPM chain: refused, not NaN
          skipped.append(f"{data_name} {sde_name} {label}: {str(e).splitlines()[0]}")
          continue
        x = jax.block_until_ready(x)
        secs = time.perf_counter() - t0
        sw = (
          float(sliced_wasserstein(jax.random.key(7), x, exact))
          if bool(jnp.all(jnp.isfinite(x)))
          else float("nan")
        )
        row = dict(
          data=data_name,
          sde=sde_name,
          sampler=label.split("@")[0],
          nfe=int(used),
          sw2=sw,
          noise_floor=floor,
          seconds=secs,
        )
        rows.append(row)
        log(
          f"{data_name:8s} {sde_name:5s} {row['sampler']:22s} NFE {row['nfe']:5d}  SW2 {sw:.4f}  "
          f"(floor {floor:.4f}, {secs:.1f}s)"
        )
  return rows, sorted(set(skipped))


def table(rows):
  """One block per (data, sde): sampler rows, NFE columns (adaptive ODE: its own NFE in brackets)."""
  out = []
  for key in dict.fromkeys((r["data"], r["sde"]) for r in rows):
    block = [r for r in rows if (r["data"], r["sde"]) == key]
    nfes = sorted({r["nfe"] for r in block if not r["sampler"].startswith("ode_tsit5")})
    out.append(f"\n{key[0]} / {key[1]}   noise floor SW2 = {block[0]['noise_floor']:.4f}")
    out.append(f"{'sampler':22s}" + "".join(f"{n:>9d}" for n in nfes))
    for s in dict.fromkeys(r["sampler"] for r in block):
      rs = [r for r in block if r["sampler"] == s]
      if s.startswith("ode_tsit5"):
        out.append(f"{s:22s} SW2 {rs[0]['sw2']:.4f} at NFE {rs[0]['nfe']}")
        continue
      by = {r["nfe"]: r["sw2"] for r in rs}
      out.append(f"{s:22s}" + "".join(f"{by[n]:9.4f}" if n in by else f"{'':9s}" for n in nfes))
  return "\n".join(out)


SCHEDULE_DIR = os.path.join(os.path.dirname(__file__), "results", "schedules")


def _path_samplers(problem):
  """name -> f(nfe) -> sample(key, sde, score_fn, shape, x_init) -> (x, nfe); None: no such NFE."""
  from score_sde.sampling import exponential as ex
  from score_sde.sampling.ode_sampler import ode_sample

  def multistep(fn, **kw):
    return lambda nfe: (
      lambda k, sde, sf, shape, x: fn(
        k, sde, sf, shape, num_steps=nfe - 1, eps=0.0, denoise=True, x_init=x, **kw
      )
    )

  def optimized(tag, fn, **kw):
    def make(nfe):
      path = os.path.join(SCHEDULE_DIR, f"{problem}_{tag}_nfe{nfe}.json")
      if not os.path.exists(path):
        return None
      return multistep(fn, schedule=path, **kw)(nfe)

    return make

  def fixed(fn, per, extra, **kw):  # per NFE per step, extra NFE at the end
    def make(nfe):
      steps = (nfe - extra) // per
      return (
        None
        if steps < 1
        else (
          lambda k, sde, sf, shape, x: fn(
            k, sde, sf, shape, num_steps=steps, eps=0.0, x_init=x, **kw
          )
        )
      )

    return make

  return {
    "dpmpp_2m_karras": multistep(
      ex.dpm_solver_pp_sample,
      order=2,
      weights="published",
      lower_order_final=False,
      schedule="karras",
    ),
    "dpmpp_2m_exact_karras": multistep(ex.dpm_solver_pp_sample, order=2, schedule="karras"),
    "dpmpp_3m_karras": multistep(ex.dpm_solver_pp_sample, order=3, schedule="karras"),
    "dpm_solver_3m_logsnr": multistep(ex.dpm_solver_sample, order=3, schedule="log_snr"),
    "unipc2_karras": multistep(ex.unipc_sample, order=2, schedule="karras"),
    "unipc3_karras": multistep(ex.unipc_sample, order=3, schedule="karras"),
    "unipc3_logsnr": multistep(ex.unipc_sample, order=3, schedule="log_snr"),
    "lms4_karras": multistep(ex.lms_sample, order=4, schedule="karras"),
    "ddim_karras": multistep(ddim_sample, schedule="karras"),
    "dpm_solver_3s_logsnr": fixed(
      ex.dpm_solver_sample, 3, 1, order=3, multistep=False, schedule="log_snr", denoise=True
    ),
    "edm_heun_exact": fixed(
      lambda *a, num_steps, **kw: edm_heun_sample(*a, num_steps=num_steps + 1, to_zero=True, **kw),
      2,
      -1,
    ),
    "ode_heun_karras": fixed(ode_sample, 2, 0, method="heun", schedule="karras"),
    "ode_rk4_karras": fixed(ode_sample, 4, 0, method="rk4", schedule="karras"),
    "unipc2_optimized": optimized("unipc2", ex.unipc_sample, order=2),
  }


def run_paths(problem, nfes, n, seed, log, only=None):
  """Path RMSE and sliced W2 of every deterministic sampler (or those in `only`) at each NFE on
  `problem`, and of the adaptive tsit5 solve at two tolerances with either error norm."""
  from score_sde.sampling.base import initial_state
  from score_sde.sampling.optimize_schedule import benchmark_problem, tight_solve

  g, sde, eps = benchmark_problem(problem)
  sf = G.marginal_score_fn(g, sde)
  shape = (n, g.dim)
  x_T = initial_state(jax.random.key(seed), sde, shape)
  t0 = time.perf_counter()
  ref = jax.jit(lambda x: tight_solve(sde, sf, x, eps))(x_T)
  log(f"{problem}: reference solve {time.perf_counter() - t0:.0f}s")
  exact = g.sample(jax.random.key(seed + 1), n)
  sw_key = jax.random.key(7)
  floor = float(sliced_wasserstein(sw_key, exact, g.sample(jax.random.key(seed + 2), n)))
  sw_ref = float(sliced_wasserstein(sw_key, ref, exact))
  rows = []
  for name, make in _path_samplers(problem).items():
    if only is not None and name not in only:
      continue
    for nfe in nfes:
      fn = make(nfe)
      if fn is None:
        continue
      t0 = time.perf_counter()
      x, used = jax.block_until_ready(
        jax.jit(lambda k, x: fn(k, sde, sf, shape, x))(jax.random.key(seed), x_T)
      )
      used = int(used)
      err = jnp.sqrt(jnp.sum((x - ref) ** 2, -1))
      row = dict(
        problem=problem,
        sampler=name,
        nfe=used,
        path_rmse=float(jnp.sqrt(jnp.mean(err**2))),
        worst=float(jnp.max(err)),
        sw2=float(sliced_wasserstein(sw_key, x, exact)),
        seconds=time.perf_counter() - t0,
      )
      rows.append(row)
      log(
        f"{problem:7s} {name:24s} NFE {used:3d}  path RMSE {row['path_rmse']:8.4f}  "
        f"worst {row['worst']:8.3f}  SW2 {row['sw2']:.4f}"
      )
  for per_sample in (True, False) if only is None or "ode_tsit5" in only else ():
    for tol in (1e-2, 1e-3):
      from score_sde.sampling.ode_sampler import ode_sample

      x, used, st = jax.jit(
        lambda k, x: ode_sample(
          k,
          sde,
          sf,
          shape,
          rtol=tol,
          atol=tol,
          eps=eps,
          per_sample=per_sample,
          x_init=x,
          return_stats=True,
        )
      )(jax.random.key(seed), x_T)
      err = jnp.sqrt(jnp.sum((x - ref) ** 2, -1))
      name = f"ode_tsit5_tol{tol:g}" + ("" if per_sample else "_batchnorm")
      row = dict(
        problem=problem,
        sampler=name,
        nfe=int(used),
        path_rmse=float(jnp.sqrt(jnp.mean(err**2))),
        worst=float(jnp.max(err)),
        sw2=float(sliced_wasserstein(sw_key, x, exact)),
        accepted=int(st["accepted"]),
        rejected=int(st["rejected"]),
      )
      rows.append(row)
      log(
        f"{problem:7s} {name:24s} NFE {row['nfe']:3d}  path RMSE {row['path_rmse']:8.4f}  "
        f"worst {row['worst']:8.3f}  accepted {row['accepted']} rejected {row['rejected']}"
      )
  return rows, dict(problem=problem, noise_floor_sw2=floor, reference_sw2=sw_ref)


def path_table(rows, nfes):
  out = []
  for problem in dict.fromkeys(r["problem"] for r in rows):
    out.append(f"\n{problem}: path RMSE (sliced W2) at NFE")
    out.append(f"{'sampler':24s}" + "".join(f"{n:>18d}" for n in nfes))
    block = [r for r in rows if r["problem"] == problem]
    for s in dict.fromkeys(r["sampler"] for r in block):
      rs = [r for r in block if r["sampler"] == s]
      if s.startswith("ode_tsit5"):
        r = rs[0]
        out.append(
          f"{s:24s} {r['path_rmse']:.4f} ({r['sw2']:.4f}) at NFE {r['nfe']}, worst "
          f"{r['worst']:.3g}, steps accepted {r['accepted']} rejected {r['rejected']}"
        )
        continue
      cells = []
      for n in nfes:
        r = min(rs, key=lambda r: abs(r["nfe"] - n)) if rs else None
        cells.append(
          f"{r['path_rmse']:9.4f} ({r['sw2']:.3f})" + ("*" if r["nfe"] != n else " ")
          if r is not None and abs(r["nfe"] - n) <= 2
          else f"{'':18s}"
        )
      out.append(f"{s:24s}" + "".join(f"{c:>18s}" for c in cells))
  out.append("(* : NFE one or two below the column's; the sampler's step takes several NFE)")
  return "\n".join(out)


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--quick", action="store_true", help="fewer samples and NFEs (CPU)")
  p.add_argument("--dim", type=int, default=16, help="dimension of the random mixture")
  p.add_argument("--n", type=int, default=None, help="samples per set")
  p.add_argument("--nfes", type=str, default=None, help="comma-separated NFE budgets")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument(
    "--out",
    type=str,
    default=os.path.join(os.path.dirname(__file__), "results", "sampler_nfe.json"),
  )
  p.add_argument(
    "--paths",
    type=str,
    default=None,
    help="comma-separated path-benchmark problems (gmm64, ring2d) instead",
  )
  p.add_argument(
    "--samplers",
    type=str,
    default=None,
    help="path benchmark: only these samplers (comma-separated; ode_tsit5 for the adaptive rows)",
  )
  args = p.parse_args()
  if args.paths:
    jax.config.update("jax_enable_x64", True)
    nfes = [int(v) for v in args.nfes.split(",")] if args.nfes else [10, 20, 50]
    n = args.n or 1000
    rows, meta = [], []
    for problem in args.paths.split(","):
      only = args.samplers.split(",") if args.samplers else None
      r, m = run_paths(problem, nfes, n, args.seed, lambda s: print(s, flush=True), only)
      rows, meta = rows + r, meta + [m]
    text = path_table(rows, nfes)
    print(text)
    out = args.out.replace(
      "sampler_nfe.json",
      "sampler_paths.json" if only is None else "sampler_paths_" + "_".join(only) + ".json",
    )
    with open(out, "w") as f:
      json.dump(dict(n_samples=n, nfes=nfes, problems=meta, rows=rows, table=text), f, indent=1)
    print("wrote", out)
    return
  n = args.n or (2000 if args.quick else 10000)
  nfes = (
    [int(v) for v in args.nfes.split(",")]
    if args.nfes
    else ([10, 20, 50, 100, 200] if args.quick else [10, 20, 50, 100, 200, 1000])
  )
  datasets = {
    "ring2d": G.ring_mixture(8),
    f"rand{args.dim}d": G.random_mixture(jax.random.key(42), 6, args.dim),
  }
  rows, skipped = run(datasets, nfes, n, args.seed, print)
  text = table(rows)
  print(text)
  for s in skipped:
    print("skipped", s)
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(
      dict(
        n_samples=n,
        nfes=nfes,
        dim=args.dim,
        jax_backend=jax.default_backend(),
        rows=rows,
        skipped=skipped,
        table=text,
      ),
      f,
      indent=1,
    )
  print("wrote", args.out)


if __name__ == "__main__":
  main()
