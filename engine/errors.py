"""Errors a user can act on. The CLI prints their message and exits non-zero, without a traceback."""


class RaylignError(Exception):
    """Base of every error whose message alone tells the user what to fix."""


class ConfigError(RaylignError):
    """A config key is unknown, missing or of the wrong type; the message names the dotted path."""


class DataError(RaylignError):
    """A data file is malformed; the message names the file and line."""


class PluginError(RaylignError):
    """A plugin, stage or verifier name is unknown or registered twice; the message lists the known ones."""


class ModelError(RaylignError):
    """A model directory is missing or unreadable."""


class WeightSyncError(RaylignError):
    """A weight sync exceeded its deadline or failed its canary check."""


class RoleFailed(RaylignError, RuntimeError):
    """A role's actors died more often than its restart budget allows (e.g. ``rollout.max_restarts``), or a
    replacement could not be started; the one-line message names the role, its node and the cause."""
