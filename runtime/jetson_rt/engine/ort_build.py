"""The onnxruntime "build": a checked model, optimised by ONNX Runtime, saved."""

from __future__ import annotations

import platform
import tempfile
from pathlib import Path
from typing import Any

from jetson_rt.atomic import atomic_move
from jetson_rt.engine.onnx_check import import_onnx, onnxruntime_load_error
from jetson_rt.engine.options import BuildOptions
from jetson_rt.engine.ort_artifact import cpu_dependency, layout_domains, normalise_model
from jetson_rt.errors import ConfigError, EngineError, ModelError
from jetson_rt.log import logger


def onnxruntime_platform(options: BuildOptions | None = None) -> dict[str, Any]:
    """The versions and CPU an ONNX Runtime-optimised model depends on.

    ``cpu_features`` is set only for ``--ort-optimization all``, whose layout
    transforms assume this CPU; a portable artifact records ``None``.
    """
    from jetson_rt.backends.onnxruntime import import_onnxruntime

    return {
        "onnxruntime": import_onnxruntime().__version__,
        "onnx": import_onnx().__version__,
        "machine": platform.machine(),
        "cpu_features": cpu_dependency(options is not None and options.ort_cpu_specific),
    }


def build_onnxruntime(options: BuildOptions, checked_model: Any) -> dict[str, str]:
    """Write the ONNX Runtime-optimised model to ``options.output``; return side files.

    The model is loaded the way the backend loads it (same session options)
    with ``optimized_model_filepath`` set: creating that session is the verdict
    on whether ONNX Runtime can run the model. Then, when its input shapes are
    known, it runs once on zeros: a model that cannot run here is refused now,
    not on the first frame. The saved graph is put in canonical form
    (:func:`~jetson_rt.engine.ort_artifact.normalise_model`) so that identical
    inputs give identical bytes.
    """
    from jetson_rt.backends.onnxruntime import OnnxRuntimeBackend

    onnx = import_onnx()
    output = options.output
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{output.name}.", dir=output.parent) as tmp:
        staged = Path(tmp) / output.name
        backend = OnnxRuntimeBackend(
            options.model,
            input_shapes=options.opt_shapes or None,
            graph_optimization=options.ort_graph_level,
            optimized_model_path=staged,
            verify=False,
        )
        try:
            backend.activate()
            logger.info("test run on zeros passed: outputs %s", [s.shape for s in backend.outputs])
        except ModelError as exc:
            if backend.load_error is not None:
                raise onnxruntime_load_error(
                    checked_model, options.model, backend.load_error
                ) from backend.load_error
            steering = _steering_inputs(checked_model)
            if not steering or not staged.is_file():
                raise
            # Zeros are only a guess at the values of an integer input (a sample
            # rate, a mode flag) that may pick the graph's branch: ONNX Runtime
            # loaded the model, so that guess does not refuse it.
            logger.warning(
                "%s; inputs %s hold values zeros may not stand for: built without a test run",
                exc,
                ", ".join(steering),
            )
        except ConfigError as exc:
            if options.opt_shapes or not staged.is_file():
                raise
            # Dynamic dimensions and no --shapes: the session (and the optimised
            # model) exists, only the test run was not possible.
            logger.info("optimised without a test run: %s", exc)
        finally:
            backend.deactivate()
        if not staged.is_file():
            raise EngineError(f"ONNX Runtime wrote no optimised model for {options.model}")
        model = onnx.load(str(staged))
        domains = layout_domains(model)
        if domains and not options.ort_cpu_specific:
            raise EngineError(
                f"ONNX Runtime put CPU-layout nodes ({', '.join(domains)}) in an artifact built "
                f"with --ort-optimization {options.ort_optimization}: report this ONNX Runtime "
                "version, and use --ort-optimization all meanwhile"
            )
        if domains:
            logger.info("%s holds %s nodes: it runs only on this CPU's features", output, domains)
        onnx.save_model(normalise_model(model), str(staged))
        atomic_move(staged, output)
    return {}


def _steering_inputs(model: Any) -> list[str]:
    """Graph inputs of a non-floating type (their values may steer control flow)."""
    onnx = import_onnx()
    floats = {
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.FLOAT16,
        onnx.TensorProto.DOUBLE,
        onnx.TensorProto.BFLOAT16,
    }
    initializers = {tensor.name for tensor in model.graph.initializer}
    return [
        value.name
        for value in model.graph.input
        if value.name not in initializers and value.type.tensor_type.elem_type not in floats
    ]
