"""Errors of the registry adapter, in their own module so that every part of it can raise them."""

from retrainer.errors import UserError


class RegistryError(UserError):
    """A registry state the pipeline cannot work from; the message says what to do."""


class PromotionConflict(RegistryError):
    """@champion moved while a promotion was being decided: nothing was changed."""
