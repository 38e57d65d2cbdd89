"""Inference backends, created by name.

Each backend lives in its own module and imports its framework (onnxruntime,
tensorrt, cuda-python) only when it is activated, so this package loads on any
machine. :func:`create_backend` is the one way the runner gets a backend;
:func:`verify_model` checks a built model against its manifest first.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import TYPE_CHECKING, get_args

from jetson_rt.backends.base import Backend, BackendName, Stage, TensorSpec
from jetson_rt.errors import ConfigError

if TYPE_CHECKING:
    from jetson_rt.engine.manifest import Manifest

__all__ = [
    "Backend",
    "BackendName",
    "Stage",
    "TensorSpec",
    "backend_class",
    "backend_names",
    "create_backend",
    "verify_model",
]

# name -> "module:class"; imported on first use.
_REGISTRY: dict[str, str] = {
    "onnxruntime": "jetson_rt.backends.onnxruntime:OnnxRuntimeBackend",
    "tensorrt": "jetson_rt.backends.tensorrt:TensorRTBackend",
}


def backend_names() -> tuple[BackendName, ...]:
    """Every backend name, in the order of the ``BackendName`` literal."""
    return get_args(BackendName)


def backend_class(name: str) -> type[Backend]:
    """The class behind ``name`` (imports its module, not its framework)."""
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown backend {name!r}: choose one of {', '.join(backend_names())}"
        ) from None
    module_name, _, class_name = target.partition(":")
    cls: type[Backend] = getattr(importlib.import_module(module_name), class_name)
    return cls


def create_backend(name: str, model_path: str | Path, **options: object) -> Backend:
    """An inactive backend for ``model_path``; call ``activate()`` (or use ``with``).

    ``options`` are the backend's keyword arguments (see each backend's class
    docstring); an unknown option is refused with the list of valid ones.
    """
    cls = backend_class(name)
    accepted = [
        param.name
        for param in inspect.signature(cls.__init__).parameters.values()
        if param.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(
            f"backend {name!r} has no option {', '.join(unknown)}; "
            f"its options are: {', '.join(accepted)}"
        )
    backend: Backend = cls(model_path, **options)  # type: ignore[call-arg]
    return backend


def verify_model(model_path: str | Path) -> Manifest:
    """Check a built engine or optimised model against the manifest beside it.

    Raises :class:`~jetson_rt.errors.EngineError` when the manifest is missing
    or unreadable, when the file's sha256 differs from the recorded one (a
    truncated copy, a rebuilt engine, a file from another device), or when the
    source model it was built from is gone or its sha256 changed (a model edited
    after the build). Returns the manifest, whose platform fields the caller may
    compare with the host.
    """
    from jetson_rt.engine.manifest import verify_engine

    return verify_engine(Path(model_path))
