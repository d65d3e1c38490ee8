"""Score-based generative modeling through stochastic differential equations, in JAX."""
