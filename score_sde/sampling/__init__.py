"""Samplers: predictor-corrector (pc.py), probability-flow ODE (../ode.py) and friends.

Every sampler takes `score_fn(x, t)` and an SDE and returns (samples, nfe).
"""
from score_sde.sampling.pc import CORRECTORS, PREDICTORS, pc_sample  # noqa: F401
