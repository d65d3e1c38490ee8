"""Score-based generative modeling through stochastic differential equations, in JAX.

Importing the package changes no process-wide setting. The runners turn off XLA:CPU's
concurrency-optimized scheduler before jax starts (it deadlocks on some long lax.scan programs
with jax 0.10); library users who hit such a hang can set
XLA_FLAGS=--xla_cpu_enable_concurrency_optimized_scheduler=false themselves
(see `score_sde.runner_utils.apply_cpu_workaround`).
"""
