"""MLflow: the model registry (versions, aliases, promotion) and the run of each cycle."""

from retrainer.registry.models import ModelRegistry, ModelVersionInfo, PromotionConflict, RegistryError
from retrainer.registry.tracking import connect, log_cycle

__all__ = ["ModelRegistry", "ModelVersionInfo", "PromotionConflict", "RegistryError", "connect", "log_cycle"]
