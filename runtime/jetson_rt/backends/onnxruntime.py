"""ONNX Runtime on the CPU, bound once with IOBinding.

Every input and output is a numpy array allocated in :meth:`activate` and
wrapped, without a copy, in an ``OrtValue`` bound to the session's
``IOBinding``. :meth:`execute` is ``run_with_iobinding`` on those bindings:
the session reads the arrays the caller filled and writes into the output
arrays in place, so nothing is allocated per inference. ``stage_in`` and
``stage_out`` have nothing to copy on a CPU backend and are no-ops (their
stage times are 0).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from jetson_rt.backends._lifecycle import BackendLifecycle
from jetson_rt.backends.base import BackendName, TensorSpec
from jetson_rt.errors import ConfigError, ModelError, PlatformError
from jetson_rt.log import logger

GraphOptimization = Literal["disable", "basic", "extended", "all"]

_OPTIMIZATION_LEVELS: dict[str, str] = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}

# ONNX Runtime's type strings for the tensor element types a model may expose.
_ORT_DTYPES: dict[str, type[np.generic]] = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(int16)": np.int16,
    "tensor(uint16)": np.uint16,
    "tensor(int32)": np.int32,
    "tensor(uint32)": np.uint32,
    "tensor(int64)": np.int64,
    "tensor(uint64)": np.uint64,
    "tensor(bool)": np.bool_,
}


def import_onnxruntime() -> Any:
    """Import onnxruntime, or say how to install it."""
    try:
        import onnxruntime  # type: ignore[import-untyped]
    except ImportError as exc:
        raise PlatformError(
            "the onnxruntime backend needs the onnxruntime package: "
            "install jetson-rt with the 'ort' extra (pip install 'jetson-rt[ort]')"
        ) from exc
    return onnxruntime


def ort_dtype(type_string: str, tensor: str) -> np.dtype[np.generic]:
    try:
        return np.dtype(_ORT_DTYPES[type_string])
    except KeyError:
        raise ModelError(
            f"tensor {tensor!r} has type {type_string}, which the onnxruntime backend does not "
            f"bind; supported: {', '.join(sorted(_ORT_DTYPES))}"
        ) from None


def resolve_shape(
    tensor: str,
    declared: Sequence[object],
    *,
    batch: int | None,
    override: Sequence[int] | None,
) -> tuple[int, ...]:
    """The concrete shape of one input from its declared shape and the options.

    Declared dimensions that are not positive integers (symbolic names, ``None``)
    are dynamic. The leading one takes ``batch``; any other needs ``override``.
    """
    if override is not None:
        shape = tuple(int(dim) for dim in override)
        if len(shape) != len(declared):
            raise ConfigError(
                f"input_shapes[{tensor!r}] has {len(shape)} dimensions but the model "
                f"declares {len(declared)}: {list(declared)}"
            )
        for axis, (want, fixed) in enumerate(zip(shape, declared, strict=True)):
            if want <= 0:
                raise ConfigError(f"input_shapes[{tensor!r}] axis {axis} must be positive")
            if isinstance(fixed, int) and fixed > 0 and fixed != want:
                raise ConfigError(
                    f"input_shapes[{tensor!r}] axis {axis} is {want} but the model fixes it "
                    f"at {fixed}; only dynamic dimensions can be set"
                )
        return shape

    missing = unsized_axes(declared, batch=batch)
    if missing:
        raise missing_sizes_error({tensor: declared})
    resolved: list[int] = []
    for axis, dim in enumerate(declared):
        if isinstance(dim, int) and dim > 0:
            if axis == 0 and batch is not None and batch != dim:
                raise ConfigError(
                    f"batch={batch} but input {tensor!r} has a fixed batch of {dim}: "
                    "export the model with a dynamic batch or drop the batch option"
                )
            resolved.append(dim)
        else:
            assert batch is not None  # axis 0; unsized_axes found no other
            resolved.append(batch)
    return tuple(resolved)


def unsized_axes(declared: Sequence[object], *, batch: int | None) -> list[int]:
    """The dynamic axes of one input that neither ``batch`` nor a fixed size covers."""
    return [
        axis
        for axis, dim in enumerate(declared)
        if not (isinstance(dim, int) and dim > 0) and not (axis == 0 and batch is not None)
    ]


def _yaml_key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name) else json.dumps(name)


def missing_sizes_error(declared: Mapping[str, Sequence[object]]) -> ConfigError:
    """One message for every input axis with no size, with the text that gives them.

    Each dynamic axis is written ``D`` in the suggested ``--shapes`` item
    (build-engine), ``shapes:`` mapping (runner.yaml) and ``input_shapes``
    option (bench ``--option``), to be replaced by its size.
    """
    described: list[str] = []
    items: list[str] = []
    yaml_items: list[str] = []
    for tensor, dims in declared.items():
        axes = unsized_axes(dims, batch=None)
        described.append(
            f"{tensor!r} "
            + ", ".join(f"axis {axis} is dynamic ({dims[axis]!r})" for axis in axes)
            + f" in {list(dims)}"
        )
        sizes = [str(dim) if axis not in axes else "D" for axis, dim in enumerate(dims)]
        items.append(f"{tensor}:{'x'.join(sizes)}")
        yaml_items.append(f"{_yaml_key(tensor)}: [{', '.join(sizes)}]")
    mapping = "{" + ", ".join(yaml_items) + "}"
    batch_only = all(unsized_axes(dims, batch=None) == [0] for dims in declared.values())
    batch_hint = "; a dynamic axis 0 alone can also be set with batch=N" if batch_only else ""
    return ConfigError(
        f"dynamic input axes have no size: {'; '.join(described)}. Replace each D with its "
        f"size and add: --shapes {','.join(items)} (build-engine), shapes: {mapping} "
        f"(runner.yaml model), --option 'input_shapes={mapping}' (bench){batch_hint}"
    )


class OnnxRuntimeBackend(BackendLifecycle):
    """One ONNX model on ONNX Runtime's CPU execution provider.

    Options:
        batch: size of a dynamic leading (batch) dimension.
        input_shapes: full concrete shapes by input name, for other dynamic axes.
        intra_op_threads / inter_op_threads: thread pools; 1 and 1 (the default)
            keep the run on the calling thread's core, which the runner pins.
            0 lets ONNX Runtime choose.
        graph_optimization: ``disable``, ``basic``, ``extended`` or ``all``.
        optimized_model_path: where ONNX Runtime writes the graph it optimised.
        allow_spinning: let idle pool threads spin (lower latency, burns cores).
        deterministic: ask for deterministic kernels (``use_deterministic_compute``).
        verify: check the model against the manifest beside it before loading;
            ``None`` checks when a manifest exists.
    """

    name: BackendName = "onnxruntime"

    def __init__(
        self,
        model_path: str | Path,
        *,
        batch: int | None = None,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
        intra_op_threads: int = 1,
        inter_op_threads: int = 1,
        graph_optimization: GraphOptimization = "all",
        optimized_model_path: str | Path | None = None,
        allow_spinning: bool = False,
        deterministic: bool = True,
        verify: bool | None = None,
    ) -> None:
        super().__init__()
        if batch is not None and batch <= 0:
            raise ConfigError(f"batch must be a positive integer, not {batch}")
        for label, value in (
            ("intra_op_threads", intra_op_threads),
            ("inter_op_threads", inter_op_threads),
        ):
            if value < 0:
                raise ConfigError(f"{label} must be >= 0 (0 lets ONNX Runtime choose), not {value}")
        if graph_optimization not in _OPTIMIZATION_LEVELS:
            raise ConfigError(
                f"graph_optimization must be one of {', '.join(_OPTIMIZATION_LEVELS)}, "
                f"not {graph_optimization!r}"
            )
        self.model_path = Path(model_path)
        self.batch = batch
        self.input_shapes = dict(input_shapes or {})
        self.intra_op_threads = intra_op_threads
        self.inter_op_threads = inter_op_threads
        self.graph_optimization: GraphOptimization = graph_optimization
        self.optimized_model_path = (
            Path(optimized_model_path) if optimized_model_path is not None else None
        )
        self.allow_spinning = allow_spinning
        self.deterministic = deterministic
        self.verify = verify
        self._session: Any = None
        # What ONNX Runtime raised when it refused to create the session, if it did.
        self.load_error: BaseException | None = None
        self._binding: Any = None
        self._run_options: Any = None
        # OrtValues wrap the host arrays without copying; kept to pin their lifetime.
        self._ort_values: list[Any] = []

    # --- lifecycle ----------------------------------------------------------

    def session_options(self) -> Any:
        """The ``SessionOptions`` this backend creates its session with."""
        ort = import_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads
        options.inter_op_num_threads = self.inter_op_threads
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = getattr(
            ort.GraphOptimizationLevel, _OPTIMIZATION_LEVELS[self.graph_optimization]
        )
        options.use_deterministic_compute = self.deterministic
        spin = "1" if self.allow_spinning else "0"
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        options.add_session_config_entry("session.inter_op.allow_spinning", spin)
        options.log_severity_level = 3  # errors only; the package logger reports the rest
        if self.optimized_model_path is not None:
            self.optimized_model_path.parent.mkdir(parents=True, exist_ok=True)
            options.optimized_model_filepath = str(self.optimized_model_path)
        return options

    def _open(self) -> None:
        ort = import_onnxruntime()
        if not self.model_path.is_file():
            raise ModelError(f"model {self.model_path} does not exist or is not a file")
        self._verify_manifest()
        self.load_error = None
        try:
            self._session = ort.InferenceSession(
                str(self.model_path),
                sess_options=self.session_options(),
                providers=["CPUExecutionProvider"],
            )
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            self.load_error = exc
            raise ModelError(
                f"onnxruntime cannot load {self.model_path}: {exc}. "
                "Check the model with `jetson-rt build-engine --backend onnxruntime`"
            ) from exc

        self._inputs = self._resolve_inputs()
        for spec in self._inputs:
            self._host_inputs[spec.name] = np.zeros(spec.shape, dtype=spec.dtype)
        self._outputs = self._probe_outputs()
        for spec in self._outputs:
            self._host_outputs[spec.name] = np.zeros(spec.shape, dtype=spec.dtype)

        self._binding = self._session.io_binding()
        for host, bind in (
            (self._host_inputs, self._binding.bind_ortvalue_input),
            (self._host_outputs, self._binding.bind_ortvalue_output),
        ):
            for tensor, array in host.items():
                value = ort.OrtValue.ortvalue_from_numpy(array, "cpu", 0)
                self._ort_values.append(value)
                bind(tensor, value)
        self._run_options = ort.RunOptions()
        self._stage_ms.update({"h2d": 0.0, "infer": float("nan"), "d2h": 0.0})
        logger.info(
            "onnxruntime %s: %s, inputs %s, outputs %s",
            ort.__version__,
            self.model_path.name,
            {s.name: s.shape for s in self._inputs},
            {s.name: s.shape for s in self._outputs},
        )

    def _verify_manifest(self) -> None:
        if self.verify is False:
            return
        from jetson_rt.engine.manifest import manifest_path, verify_artifact

        if self.verify is None and not manifest_path(self.model_path).exists():
            return
        manifest = verify_artifact(self.model_path)
        if manifest.backend == "onnxruntime":
            from jetson_rt.engine.ort_artifact import refuse_cpu_mismatch

            refuse_cpu_mismatch(self.model_path, manifest.platform)

    def _resolve_inputs(self) -> tuple[TensorSpec, ...]:
        declared = self._session.get_inputs()
        names = {arg.name for arg in declared}
        unknown = sorted(set(self.input_shapes) - names)
        if unknown:
            raise ConfigError(
                f"input_shapes names {unknown}, which {self.model_path.name} does not have; "
                f"its inputs are {sorted(names)}"
            )
        unsized = {
            arg.name: list(arg.shape)
            for arg in declared
            if arg.name not in self.input_shapes and unsized_axes(arg.shape, batch=self.batch)
        }
        if unsized:
            raise missing_sizes_error(unsized)
        return tuple(
            TensorSpec(
                name=arg.name,
                shape=resolve_shape(
                    arg.name,
                    list(arg.shape),
                    batch=self.batch,
                    override=self.input_shapes.get(arg.name),
                ),
                dtype=ort_dtype(arg.type, arg.name),
            )
            for arg in declared
        )

    def _probe_outputs(self) -> tuple[TensorSpec, ...]:
        """Output shapes for the chosen input shapes, from one run on zeros.

        Declared output shapes may be symbolic or absent; one run is the only
        source that is always right. It doubles as the first warm-up.
        """
        names = [arg.name for arg in self._session.get_outputs()]
        try:
            results = self._session.run(names, self._host_inputs)
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            raise ModelError(
                f"{self.model_path.name} does not run with inputs "
                f"{ {s.name: s.shape for s in self._inputs} }: {exc}"
            ) from exc
        specs = []
        for name, value in zip(names, results, strict=True):
            array = np.asarray(value)
            specs.append(TensorSpec(name=name, shape=tuple(array.shape), dtype=array.dtype))
        return tuple(specs)

    def _close(self) -> None:
        if self._binding is not None:
            self._binding.clear_binding_inputs()
            self._binding.clear_binding_outputs()
        self._binding = None
        self._ort_values.clear()
        self._run_options = None
        self._session = None

    # --- hot path -------------------------------------------------------------

    def stage_in(self) -> None:
        """Nothing to copy: the session reads the host arrays in place."""

    def execute(self) -> None:
        start = time.perf_counter_ns()
        self._session.run_with_iobinding(self._binding, self._run_options)
        self._stage_ms["infer"] = (time.perf_counter_ns() - start) / 1e6

    def stage_out(self) -> None:
        """Nothing to copy: outputs are written into the host arrays in place."""

    def synchronize(self) -> None:
        """``execute`` is synchronous on the CPU."""

    @property
    def session(self) -> Any:
        """The ``InferenceSession`` (for inspection; ``None`` while inactive)."""
        return self._session
