"""Samplers by name, from `config.sampling` (runner side: the ConfigDict stops here).

    sampler = sampler_from_config(config.sampling, sde)      # fails now on bad names/values
    loop = sampler(score_fn, shape)                          # a pc.LoopSampler
    x, nfe = loop.output(loop.run(loop.init(key), jnp.arange(loop.num_steps)))

`pc` runs its time loop in pieces (for a progress bar between on-device chunks); the other
methods are one on-device call each, exposed as a loop of one step.
"""
import functools
from typing import Callable, Dict

from score_sde import ode
from score_sde.registry import lookup
from score_sde.sampling import ddim, edm, ode_sampler, pc
from score_sde.sampling.pc import LoopSampler
from score_sde.sde import LinearSDE


def _one_shot(sample_fn: Callable, nfe) -> LoopSampler:
  """A single-call sampler `sample_fn(key) -> (x, nfe)` as a LoopSampler of one step."""
  return LoopSampler(init=lambda key: key, run=lambda key, idx: sample_fn(key),
                     output=lambda out: out, num_steps=1, nfe=nfe)


def _pc(c, sde):
  pc.check_predictor(sde, c.predictor, c.corrector, c.probability_flow)
  return lambda score_fn, shape: pc.pc_sampler(
      sde, score_fn, shape, predictor=c.predictor, corrector=c.corrector, snr=c.snr,
      n_steps=c.n_steps_each, num_steps=c.num_steps, eps=c.eps, denoise=c.noise_removal,
      probability_flow=c.probability_flow)


def _ode(c, sde):
  if c.ode_method not in ode.ODE_METHODS:
    lookup(dict.fromkeys(ode.ODE_METHODS), c.ode_method, "ODE solver")
  if c.ode_method not in ode.ADAPTIVE and c.num_steps is None:
    raise ValueError(f"sampling.ode_method={c.ode_method!r} is fixed-step: set sampling.num_steps")

  def build(score_fn, shape):
    fn = functools.partial(ode_sampler.ode_sample, sde=sde, score_fn=score_fn, shape=shape,
                           method=c.ode_method, rtol=c.rtol, atol=c.atol, num_steps=c.num_steps,
                           eps=c.eps, denoise=c.noise_removal)
    return _one_shot(lambda key: fn(key), None)
  return build


def _edm(c, sde):
  steps = 18 if c.num_steps is None else c.num_steps

  def build(score_fn, shape):
    fn = functools.partial(edm.edm_heun_sample, sde=sde, score_fn=score_fn, shape=shape,
                           num_steps=steps, rho=c.rho, s_churn=c.s_churn, s_min=c.s_min,
                           s_max=c.s_max, s_noise=c.s_noise, eps=c.eps)
    return _one_shot(lambda key: fn(key), 2 * steps)
  return build


def _ddim(c, sde):
  steps = 50 if c.num_steps is None else c.num_steps
  if c.eta < 0:
    raise ValueError(f"sampling.eta must be >= 0, got {c.eta}")

  def build(score_fn, shape):
    fn = functools.partial(ddim.ddim_sample, sde=sde, score_fn=score_fn, shape=shape,
                           num_steps=steps, eta=c.eta, eps=c.eps)
    return _one_shot(lambda key: fn(key), steps)
  return build


SAMPLERS: Dict[str, Callable] = {"pc": _pc, "ode": _ode, "edm_heun": _edm, "ddim": _ddim}


def sampler_from_config(sampling_cfg, sde: LinearSDE) -> Callable:
  """Checks `config.sampling` against `sde` and returns build(score_fn, shape) -> LoopSampler.
  An adaptive ODE solve knows its NFE only after running: `output` returns it."""
  if sampling_cfg.num_steps is not None and sampling_cfg.num_steps < 1:
    raise ValueError(f"sampling.num_steps must be >= 1, got {sampling_cfg.num_steps}")
  return lookup(SAMPLERS, sampling_cfg.method, "sampling method")(sampling_cfg, sde)
