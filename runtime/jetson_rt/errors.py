"""The package's exceptions.

Every error a user can fix derives from :class:`JetsonRtError` and says what to
change; the CLI prints it without a traceback and exits with its ``exit_code``.
"""

from __future__ import annotations


class JetsonRtError(Exception):
    """Base of all errors jetson-rt reports to its user."""

    exit_code = 2


class ConfigError(JetsonRtError):
    """A configuration file or option is invalid."""


class ModelError(JetsonRtError):
    """An ONNX model is unreadable, invalid or unsupported."""


class EngineError(JetsonRtError):
    """An engine file is corrupt, mismatched or cannot be built."""


class PlatformError(JetsonRtError):
    """The host lacks something the request needs (a DLA core, a GPU, a privilege)."""


class SimError(JetsonRtError):
    """The simulated fleet could not be created, reached or removed."""


class ReportError(JetsonRtError):
    """Validation results could not be read or a report could not be written."""
