"""Samplers: predictor-corrector (pc.py), probability-flow ODE (ode_sampler.py), EDM Heun
(edm.py), DDIM (ddim.py); the protocol and key rule in base.py, time grids in schedules.py, the
table of samplers (and their construction from a config) in dispatch.py.

Every sampler takes a key, an SDE, `score_fn(x, t)`, a shape and optionally `x_init`, and returns
(samples, nfe).
"""

from score_sde.sampling.base import LoopSampler, initial_state  # noqa: F401
from score_sde.sampling.ddim import ddim_sample  # noqa: F401
from score_sde.sampling.dispatch import SAMPLERS, sampler_from_config  # noqa: F401
from score_sde.sampling.edm import edm_heun_sample  # noqa: F401
from score_sde.sampling.ode_sampler import ode_sample  # noqa: F401
from score_sde.sampling.pc import CORRECTORS, PREDICTORS, pc_sample, pc_sampler  # noqa: F401
from score_sde.sampling.schedules import SCHEDULES, karras_sigmas, time_grid  # noqa: F401
