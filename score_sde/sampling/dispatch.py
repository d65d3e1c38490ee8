"""The table of samplers, and samplers by name from `config.sampling` (the ConfigDict stops here).

    sampler = sampler_from_config(config.sampling, sde)      # fails now on bad names/values
    loop = sampler(score_fn, shape)                          # a base.LoopSampler
    x, nfe = loop.output(loop.run(loop.init(key), jnp.arange(loop.num_steps)))

Each row of `SAMPLERS` gives the sampling function, a LoopSampler builder where its time loop
can run in pieces (`pc`, for a progress bar between on-device chunks; the others run as a loop
of one step), the default number of time steps (None: the SDE's N, or adaptive for `ode`), the
score evaluations per time step, and a check that fails before any compute. A function's
keyword arguments are read from the config fields of the same name (`CONFIG_FIELDS` lists the
few that are named differently there). Adding a sampler: one module and one row here.
"""

import inspect
from typing import Callable, Dict, NamedTuple, Optional, Union

from score_sde.registry import lookup
from score_sde.sampling import ddim, edm, exponential as ex, ode_sampler, pc, schedules
from score_sde.sampling.base import LoopSampler, one_shot
from score_sde.sde import LinearSDE


class SamplerEntry(NamedTuple):
  sample: Callable  # sample(key, sde, score_fn, shape, **opts) -> (x, nfe)
  loop: Optional[Callable]  # loop(sde, score_fn, shape, **opts) -> LoopSampler, or None
  default_steps: Optional[int]  # num_steps when not given; None: the function's own default
  nfe_per_step: Union[int, Callable]  # int, or f(**opts) -> int or None (adaptive)
  check: Callable  # check(sde, **opts): raises ValueError before any compute


def _pc_nfe(predictor="euler_maruyama", corrector="none", n_steps=1, **_):
  return pc.PREDICTOR_NFE[predictor] + pc.CORRECTOR_NFE[corrector] * n_steps


def _pc_check(sde, **opts):
  pc.pc_sampler(sde, None, (1, 1), **opts)  # builds the loop (all checks) without running it


SAMPLERS: Dict[str, SamplerEntry] = {
  "pc": SamplerEntry(pc.pc_sample, pc.pc_sampler, None, _pc_nfe, _pc_check),
  "ode": SamplerEntry(
    ode_sampler.ode_sample, ode_sampler.ode_loop, None, ode_sampler.nfe_per_step, ode_sampler.check
  ),
  "edm_heun": SamplerEntry(edm.edm_heun_sample, edm.edm_heun_loop, 18, 2, edm.check),
  "ddim": SamplerEntry(ddim.ddim_sample, ddim.ddim_loop, 50, 1, ddim.check),
  # Exponential integrators (exponential.py); multistep ones take 1 NFE a step.
  "dpm_solver": SamplerEntry(
    ex.dpm_solver_sample,
    ex.dpm_solver_loop,
    20,
    lambda **o: ex.nfe_per_step(**{"order": 3, **o}),
    ex.check,
  ),
  "dpm_solver_pp": SamplerEntry(
    ex.dpm_solver_pp_sample,
    ex.dpm_solver_pp_loop,
    20,
    lambda **o: ex.nfe_per_step(**{"order": 2, **o}),
    ex.check,
  ),
  "dpm_solver_pp_sde": SamplerEntry(
    ex.dpm_solver_pp_sde_sample,
    ex.dpm_solver_pp_sde_loop,
    20,
    1,
    lambda sde, **o: ex.check(sde, max_order=2, **o),
  ),
  "unipc": SamplerEntry(ex.unipc_sample, ex.unipc_loop, 20, 1, ex.check),
  "lms": SamplerEntry(
    ex.lms_sample,
    ex.lms_loop,
    20,
    1,
    lambda sde, **o: ex.check(sde, **{"order": 4, **o}, max_order=4),
  ),
}

# Sampler argument -> config.sampling field, where the names differ.
CONFIG_FIELDS = {
  "n_steps": "n_steps_each",
  "denoise": "noise_removal",
  "method": "ode_method",
  "weights": "solver_weights",
  "segments": "ode_segments",
}


def get_sampler(name: str) -> SamplerEntry:
  return lookup(SAMPLERS, name, "sampling method")


def options_from_config(entry: SamplerEntry, sampling_cfg) -> dict:
  """The keyword-only arguments of the sampler (its loop builder where it has one) found in
  `config.sampling` (unset fields left out)."""
  params = inspect.signature(entry.loop or entry.sample).parameters
  opts = {}
  for name, p in params.items():
    if p.kind != inspect.Parameter.KEYWORD_ONLY or name in ("x_init", "project"):
      continue
    field = CONFIG_FIELDS.get(name, name)
    if field in sampling_cfg and sampling_cfg[field] is not None:
      opts[name] = sampling_cfg[field]
  if "num_steps" not in opts and entry.default_steps is not None:
    opts["num_steps"] = entry.default_steps
  return opts


def nfe_of(entry: SamplerEntry, **opts) -> Optional[int]:
  """Score evaluations per sample with options `opts` (num_steps time steps); None when only the
  run knows (adaptive solvers)."""
  num_steps = opts.get("num_steps")
  per = entry.nfe_per_step if isinstance(entry.nfe_per_step, int) else entry.nfe_per_step(**opts)
  if per is None or num_steps is None:
    return None
  if opts.get("to_zero"):  # edm_heun: the last step, to sigma = 0, is Euler
    return per * num_steps - 1
  # Noise removal evaluates x0_hat once more, except in pc (the last step's noise-free mean).
  return per * num_steps + int(bool(opts.get("denoise")) and entry.sample is not pc.pc_sample)


def sampler_from_config(sampling_cfg, sde: LinearSDE) -> Callable:
  """Checks `config.sampling` against `sde` and returns build(score_fn, shape, project=None) ->
  LoopSampler, `project` the per-step projection of `base` (inpainting, colorization).
  An adaptive ODE solve knows its NFE only after running: `output` returns it."""
  if sampling_cfg.num_steps is not None and sampling_cfg.num_steps < 1:
    raise ValueError(f"sampling.num_steps must be >= 1, got {sampling_cfg.num_steps}")
  entry = get_sampler(sampling_cfg.method)
  opts = options_from_config(entry, sampling_cfg)
  if "schedule" in opts:
    schedules.get_schedule(opts["schedule"])
  entry.check(sde, **opts)

  def build(score_fn, shape, project=None) -> LoopSampler:
    extra = {} if project is None else {"project": project}
    if project is not None:
      entry.check(sde, **opts, **extra)
    if entry.loop is not None:
      return entry.loop(sde, score_fn, shape, **opts, **extra)
    fn = lambda key: entry.sample(key, sde, score_fn, shape, **opts, **extra)
    return one_shot(fn, nfe_of(entry, **opts))

  return build
