"""Score-based generative modeling through stochastic differential equations, in JAX."""
import os

# XLA:CPU's concurrency-optimized scheduler (jax 0.10) deadlocks on some long lax.scan programs
# (seen: Langevin correctors inside a 100-step scan on a [4000, 2] batch hang forever with every
# thread idle). Turned off before the backend starts; the flag only concerns the CPU backend.
_XLA_CPU_FIX = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
if _XLA_CPU_FIX.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _XLA_CPU_FIX).strip()
