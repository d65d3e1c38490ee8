"""Score networks, registered by name. Importing this package registers every network."""

from score_sde.models import ddpm, mlp, ncsn, ncsnpp, ncsnv2, small_unet  # noqa: F401  (registration)
from score_sde.models.registry import MODELS, build_model, get_model_class, register_model

__all__ = ["MODELS", "build_model", "get_model_class", "register_model"]
