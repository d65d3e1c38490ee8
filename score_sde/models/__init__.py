"""Score networks, registered by name. Importing this package registers every network."""
from score_sde.models.registry import MODELS, build_model, get_model_class, register_model
from score_sde.models import mlp, small_unet  # noqa: F401  (registration)
from score_sde.models import ddpm, ncsnpp  # noqa: F401  (registration)
from score_sde.models import ncsn, ncsnv2  # noqa: F401  (registration)
