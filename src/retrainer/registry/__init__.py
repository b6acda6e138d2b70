"""MLflow: the model registry (versions, aliases, promotion) and the run of each cycle."""

from retrainer.registry.errors import PromotionConflict, RegistryError
from retrainer.registry.models import ModelRegistry
from retrainer.registry.tracking import connect, log_cycle
from retrainer.registry.trust import UntrustedModel
from retrainer.registry.versions import ModelVersionInfo

__all__ = ["ModelRegistry", "ModelVersionInfo", "PromotionConflict", "RegistryError", "UntrustedModel", "connect", "log_cycle"]
