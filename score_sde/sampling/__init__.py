"""Samplers: predictor-corrector (pc.py), probability-flow ODE (ode_sampler.py), EDM Heun
(edm.py), DDIM (ddim.py); chosen by name from a config in dispatch.py.

Every sampler takes a key, an SDE, `score_fn(x, t)` and a shape, and returns (samples, nfe).
"""
from score_sde.sampling.ddim import ddim_sample  # noqa: F401
from score_sde.sampling.edm import edm_heun_sample, karras_sigmas, t_of_sigma  # noqa: F401
from score_sde.sampling.ode_sampler import ode_sample  # noqa: F401
from score_sde.sampling.pc import CORRECTORS, PREDICTORS, pc_sample, pc_sampler  # noqa: F401
from score_sde.sampling.dispatch import SAMPLERS, sampler_from_config  # noqa: F401
