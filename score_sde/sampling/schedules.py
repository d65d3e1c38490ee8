"""Time grids for fixed-step samplers, by name: `SCHEDULES[name](sde, num_steps, eps, **opts)`,
or from a file: a schedule name ending in `.json` is a file written by
`score_sde.sampling.optimize_schedule` (its `sigmas`, sigma = s / a, from sigma(T) to sigma(eps)),
and an array is taken as the time grid itself (e.g. while a schedule is being optimized).

Options a schedule does not use (e.g. `rho` for `uniform`) are ignored, so that samplers can
pass theirs to any schedule. Each returns the decreasing array t_0 = T > t_1 > ... > t_n = eps of n = num_steps steps (shape
[n + 1]); a sampler steps from t_i to t_{i+1}. Grids are built through the SDE's own
sigma / log-SNR and their inverses, so they apply to every path.
"""

import json
import os
from typing import Callable, Dict

import jax
import jax.numpy as jnp
import numpy as np

from score_sde.registry import lookup
from score_sde.sde import LinearSDE


def _check(num_steps: int, eps: float, sde: LinearSDE):
  if num_steps < 1:
    raise ValueError(f"num_steps must be >= 1, got {num_steps}")
  if not 0 <= eps < sde.T:
    raise ValueError(f"the cut-off eps must be in [0, T = {sde.T}), got {eps}")


def _pin_ends(ts, sde: LinearSDE, eps: float):
  # Inverse maps round: the grid starts and ends exactly at T and eps.
  return ts.at[0].set(sde.T).at[-1].set(eps)


def uniform(sde: LinearSDE, num_steps: int, eps: float, **_):
  """t_i = T + i / n (eps - T): uniform in t (the 2021 release's PC grid, plus its end point)."""
  _check(num_steps, eps, sde)
  return jnp.linspace(sde.T, eps, num_steps + 1)


def log_snr(sde: LinearSDE, num_steps: int, eps: float, **_):
  """lambda_i = lambda(T) + i / n (lambda(eps) - lambda(T)), t_i = t(lambda_i): uniform in log-SNR."""
  _check(num_steps, eps, sde)
  lam = jnp.linspace(sde.log_snr(sde.T), sde.log_snr(eps), num_steps + 1)
  return _pin_ends(sde.t_of_log_snr(lam), sde, eps)


def karras(sde: LinearSDE, num_steps: int, eps: float, rho: float = 7.0, **_):
  """sigma_i = (sigma_max^(1/rho) + i/n (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho, sigma = s/a,
  sigma_max = sigma(T), sigma_min = sigma(eps) (EDM eq. 5); t_i = t(sigma_i)."""
  _check(num_steps, eps, sde)
  sigmas = karras_sigmas(sde.sigma(eps), sde.sigma(sde.T), num_steps, rho)
  return _pin_ends(sde.t_of_sigma(sigmas), sde, eps)


def karras_sigmas(sigma_min, sigma_max, num_steps: int, rho: float = 7.0):
  """The Karras sigmas themselves: [num_steps + 1], from sigma_max down to sigma_min."""
  i = jnp.arange(num_steps + 1) / num_steps
  inv = 1.0 / rho
  return (sigma_max**inv + i * (sigma_min**inv - sigma_max**inv)) ** rho


SCHEDULES: Dict[str, Callable] = {"uniform": uniform, "log_snr": log_snr, "karras": karras}


def from_file(path: str) -> Callable:
  """The schedule stored in JSON file `path` (field `sigmas`: [n + 1], decreasing, sigma = s/a).
  The grid must have num_steps steps and end at sigma(T) and sigma(eps) of the sampler's SDE."""
  with open(path) as f:
    sigmas = np.asarray(json.load(f)["sigmas"], np.float64)

  def schedule(sde: LinearSDE, num_steps: int, eps: float, **_):
    _check(num_steps, eps, sde)
    if len(sigmas) != num_steps + 1:
      raise ValueError(
        f"schedule file {path} has {len(sigmas) - 1} steps, the sampler num_steps={num_steps}"
      )
    with jax.ensure_compile_time_eval():  # a check on constants, also when called under jit
      ends = np.array([float(sde.sigma(sde.T)), float(sde.sigma(eps))])
    if not np.allclose(sigmas[[0, -1]], ends, rtol=1e-4):
      raise ValueError(
        f"schedule file {path} runs from sigma {sigmas[0]:.4g} to {sigmas[-1]:.4g}; "
        f"this SDE and eps give {ends[0]:.4g} to {ends[1]:.4g}"
      )
    return _pin_ends(sde.t_of_sigma(jnp.asarray(sigmas)), sde, eps)

  return schedule


def get_schedule(name: str) -> Callable:
  """The schedule `name` of SCHEDULES, or of a JSON file (a name ending in .json)."""
  if isinstance(name, str) and name.endswith(".json"):
    if not os.path.exists(name):
      raise ValueError(f"schedule file {name} does not exist")
    return from_file(name)
  return lookup(SCHEDULES, name, "schedule")


def time_grid(sde: LinearSDE, num_steps: int, eps: float, schedule="uniform", **opts):
  """The grid of `schedule` (a name, a .json file, or the grid itself as an array):
  [num_steps + 1] decreasing from T to eps."""
  if not isinstance(schedule, str):
    ts = jnp.asarray(schedule)
    if ts.shape != (num_steps + 1,):
      raise ValueError(
        f"a time grid of {num_steps} steps has shape ({num_steps + 1},), got {ts.shape}"
      )
    return ts
  return get_schedule(schedule)(sde, num_steps, eps, **opts)
