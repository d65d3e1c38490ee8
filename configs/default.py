"""The shared defaults live in the package (`score_sde/config_defaults.py`) so config files load from any directory."""

from score_sde.config_defaults import get_default_config  # noqa: F401
