"""The package logger. One logger, configured once by the CLI."""

from __future__ import annotations

import logging
import os

LOGGER_NAME = "jetson_rt"
logger = logging.getLogger(LOGGER_NAME)


def configure(verbosity: int = 0) -> None:
    """Log to stderr; ``JETSON_RT_LOG_LEVEL`` overrides the verbosity flags."""
    level_name = os.environ.get("JETSON_RT_LOG_LEVEL")
    if level_name:
        level = logging.getLevelName(level_name.upper())
        if not isinstance(level, int):
            level = logging.INFO
    else:
        level = logging.WARNING - 10 * min(verbosity, 2) if verbosity else logging.INFO
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
