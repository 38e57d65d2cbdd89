"""The onnxruntime "build": a checked model, optimised by ONNX Runtime, saved."""

from __future__ import annotations

import platform
import tempfile
from pathlib import Path
from typing import Any

from jetson_rt.atomic import atomic_move
from jetson_rt.engine.onnx_check import import_onnx, refuse_unsupported_onnxruntime_nodes
from jetson_rt.engine.options import BuildOptions
from jetson_rt.errors import ConfigError, EngineError
from jetson_rt.log import logger


def onnxruntime_platform() -> dict[str, Any]:
    """The versions an ONNX Runtime-optimised model depends on."""
    from jetson_rt.backends.onnxruntime import import_onnxruntime

    return {
        "onnxruntime": import_onnxruntime().__version__,
        "onnx": import_onnx().__version__,
        "machine": platform.machine(),
    }


def build_onnxruntime(options: BuildOptions, checked_model: Any) -> dict[str, str]:
    """Write the ONNX Runtime-optimised model to ``options.output``; return side files.

    The model is loaded the way the backend loads it (same session options)
    with ``optimized_model_filepath`` set, then, when its input shapes are known,
    run once on zeros: a model that cannot run here is refused now, not on
    the first frame.
    """
    from jetson_rt.backends.onnxruntime import OnnxRuntimeBackend

    refuse_unsupported_onnxruntime_nodes(checked_model, options.model)
    output = options.output
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{output.name}.", dir=output.parent) as tmp:
        staged = Path(tmp) / output.name
        backend = OnnxRuntimeBackend(
            options.model,
            input_shapes=options.opt_shapes or None,
            graph_optimization=options.ort_optimization,
            optimized_model_path=staged,
            verify=False,
        )
        try:
            backend.activate()
            logger.info("test run on zeros passed: outputs %s", [s.shape for s in backend.outputs])
        except ConfigError:
            if options.opt_shapes:
                raise
            # Dynamic dimensions and no --shapes: the session (and the optimised
            # model) exists, only the test run was not possible.
            logger.info(
                "%s has dynamic input dimensions: optimised without a test run "
                "(give --shapes to run it once)",
                options.model.name,
            )
        finally:
            backend.deactivate()
        if not staged.is_file():
            raise EngineError(f"ONNX Runtime wrote no optimised model for {options.model}")
        atomic_move(staged, output)
    return {}
