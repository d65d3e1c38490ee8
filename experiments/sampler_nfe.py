"""Sampler x NFE -> sliced Wasserstein-2 distance to exact samples, on Gaussian mixtures.

The data are Gaussian mixtures (2-D ring of 8 and a random mixture in higher dimension), whose
marginal score under every linear SDE is closed-form (score_sde.gmm.marginal_score_fn), so the
distance left after sampling is the sampler's own discretisation error. Each row is a sampler at a
given number of score evaluations (NFE); the noise floor is the same distance between two
independent exact sample sets of the same size (the smallest distance this sample size can show).

    python experiments/sampler_nfe.py --quick      # CPU minutes
    python experiments/sampler_nfe.py              # full table

Writes experiments/results/sampler_nfe.json (or --out).
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
    return lambda k, sde, sf, shape: pc.pc_sample(k, sde, sf, shape, predictor=predictor,
                                                  corrector=corrector, num_steps=n, snr=0.16,
                                                  n_steps=1, denoise=True)
  return make


def _fixed_ode(method, evals):
  def make(nfe):
    return lambda k, sde, sf, shape: ode_sample(k, sde, sf, shape, method=method,
                                                num_steps=max(1, nfe // evals))
  return make


# name -> (make(nfe) -> sampler, needs these PC names registered)
SAMPLERS = {
    "pc_euler_maruyama": (_pc("euler_maruyama", "none", 1), ("euler_maruyama", "none")),
    "pc_reverse_diffusion": (_pc("reverse_diffusion", "none", 1), ("reverse_diffusion", "none")),
    "pc_ancestral": (_pc("ancestral_sampling", "none", 1), ("ancestral_sampling", "none")),
    "pc_rd_langevin": (_pc("reverse_diffusion", "langevin", 2), ("reverse_diffusion", "langevin")),
    "ode_euler": (_fixed_ode("euler", 1), ()),
    "ode_heun": (_fixed_ode("heun", 2), ()),
    "edm_heun": (lambda nfe: lambda k, sde, sf, shape: edm_heun_sample(
        k, sde, sf, shape, num_steps=max(1, nfe // 2)), ()),
    "ddim_eta0": (lambda nfe: lambda k, sde, sf, shape: ddim_sample(
        k, sde, sf, shape, num_steps=nfe), ()),
    "ddim_eta1": (lambda nfe: lambda k, sde, sf, shape: ddim_sample(
        k, sde, sf, shape, num_steps=nfe, eta=1.0), ()),
}
TSIT5_TOLS = (1e-2, 1e-3, 1e-5)


def _registered(names):
  known = set(pc.PREDICTORS) | set(pc.CORRECTORS)
  return [n for n in names if n not in known]


def run(datasets, nfes, n, seed, log):
  rows, skipped = [], []
  for data_name, g in datasets.items():
    exact = g.sample(jax.random.key(seed + 1), n)
    floor = float(sliced_wasserstein(jax.random.key(7), exact, g.sample(jax.random.key(seed + 2), n)))
    for sde_name, sde in SDES.items():
      sf = G.marginal_score_fn(g, sde)
      shape = (n, g.dim)
      jobs = [(f"ode_tsit5_tol{tol:g}", lambda tol=tol: (
          lambda k, sde, sf, shape: ode_sample(k, sde, sf, shape, rtol=tol, atol=tol))) for tol in TSIT5_TOLS]
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
        sw = float(sliced_wasserstein(jax.random.key(7), x, exact)) if bool(jnp.all(jnp.isfinite(x))) else float("nan")
        row = dict(data=data_name, sde=sde_name, sampler=label.split("@")[0], nfe=int(used), sw2=sw,
                   noise_floor=floor, seconds=secs)
        rows.append(row)
        log(f"{data_name:8s} {sde_name:5s} {row['sampler']:22s} NFE {row['nfe']:5d}  SW2 {sw:.4f}  "
            f"(floor {floor:.4f}, {secs:.1f}s)")
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


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--quick", action="store_true", help="fewer samples and NFEs (CPU)")
  p.add_argument("--dim", type=int, default=16, help="dimension of the random mixture")
  p.add_argument("--n", type=int, default=None, help="samples per set")
  p.add_argument("--nfes", type=str, default=None, help="comma-separated NFE budgets")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--out", type=str, default=os.path.join(os.path.dirname(__file__), "results", "sampler_nfe.json"))
  args = p.parse_args()
  n = args.n or (2000 if args.quick else 10000)
  nfes = [int(v) for v in args.nfes.split(",")] if args.nfes else (
      [10, 20, 50, 100, 200] if args.quick else [10, 20, 50, 100, 200, 1000])
  datasets = {"ring2d": G.ring_mixture(8),
              f"rand{args.dim}d": G.random_mixture(jax.random.key(42), 6, args.dim)}
  rows, skipped = run(datasets, nfes, n, args.seed, print)
  text = table(rows)
  print(text)
  for s in skipped:
    print("skipped", s)
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(dict(n_samples=n, nfes=nfes, dim=args.dim, jax_backend=jax.default_backend(),
                   rows=rows, skipped=skipped, table=text), f, indent=1)
  print("wrote", args.out)


if __name__ == "__main__":
  main()
