"""Validation of an ONNX model before anything is built from it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jetson_rt.errors import ModelError, PlatformError

# The default ONNX domain has two spellings.
_DEFAULT_DOMAINS = ("", "ai.onnx")


def import_onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise PlatformError(
            "checking ONNX models needs the onnx package: install jetson-rt with the 'ort' extra"
        ) from exc
    return onnx


def load_checked_model(path: Path) -> Any:
    """Load ``path``, run the full checker and strict shape inference; return the model.

    The returned model carries the inferred shapes (``graph.value_info``).
    """
    onnx = import_onnx()
    if not path.is_file():
        raise ModelError(f"{path} does not exist")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf raises DecodeError, others raise their own
        raise ModelError(
            f"{path} is not a readable ONNX model ({exc}): re-export it, and check that the "
            "file was copied completely"
        ) from exc
    try:
        # The path form also checks models with external data (> 2 GiB).
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ModelError(
            f"{path} fails the ONNX checker: {_first_line(exc)}. Fix the exporter's output "
            "(or re-export with a supported opset)"
        ) from exc
    except onnx.shape_inference.InferenceError as exc:
        raise ModelError(f"{path} fails ONNX shape inference: {_first_line(exc)}") from exc
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except onnx.shape_inference.InferenceError as exc:
        raise ModelError(f"{path} fails ONNX shape inference: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True)
class UnsupportedNode:
    name: str
    op_type: str
    domain: str
    opset: int | None
    why: str

    def describe(self) -> str:
        op = f"{self.domain}::{self.op_type}" if self.domain else self.op_type
        label = repr(self.name) if self.name else "(unnamed)"
        return f"node {label} ({op}, opset {self.opset}): {self.why}"


def _domain(name: str) -> str:
    return "" if name in _DEFAULT_DOMAINS else name


# Ops ONNX Runtime resolves while loading the graph, without a kernel: a
# ``Constant`` becomes an initializer. Nearly every PyTorch and Paddle export has them.
_RESOLVED_AT_LOAD = frozenset({("", "Constant")})


def unsupported_onnxruntime_nodes(model: Any) -> list[UnsupportedNode]:
    """Nodes of ``model`` (top-level graph) that ONNX Runtime's CPU provider may not place.

    A guess from the kernel registrations, used only to name the culprits once
    ONNX Runtime has refused the model (:func:`onnxruntime_load_error`): whether
    a model runs is decided by creating a session on it, never by this list.
    A node runs when the CPU provider registers a kernel whose version range
    holds the op's schema version at the model's opset, when the op is an
    ONNX function ONNX Runtime expands (or a model-local function), or when
    ONNX Runtime resolves it at load (``Constant``).
    """
    onnx = import_onnx()
    from jetson_rt.backends.onnxruntime import import_onnxruntime

    ort = import_onnxruntime()
    state = ort.capi._pybind_state
    kernels: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for kernel in state.get_all_opkernel_def():
        if kernel.provider == "CPUExecutionProvider":
            kernels.setdefault((_domain(kernel.domain), kernel.op_name), []).append(
                tuple(kernel.version_range)
            )
    ort_schemas: dict[tuple[str, str], int] = {}
    for schema in state.get_all_operator_schema():
        key = (_domain(schema.domain), schema.name)
        ort_schemas[key] = max(ort_schemas.get(key, 0), int(schema.since_version))

    opsets = {_domain(entry.domain): int(entry.version) for entry in model.opset_import}
    local_functions = {(_domain(fn.domain), fn.name) for fn in model.functions}

    unsupported: list[UnsupportedNode] = []
    for node in model.graph.node:
        domain = _domain(node.domain)
        key = (domain, node.op_type)
        opset = opsets.get(domain)
        if key in local_functions or key in _RESOLVED_AT_LOAD:
            continue
        if opset is None:
            unsupported.append(
                UnsupportedNode(
                    node.name, node.op_type, domain, None, "its domain has no opset import"
                )
            )
            continue
        expandable = False
        try:
            schema = onnx.defs.get_schema(node.op_type, opset, domain)
            since = int(schema.since_version)
            expandable = bool(schema.has_function or schema.has_context_dependent_function)
        except onnx.defs.SchemaError:
            known = ort_schemas.get(key)
            if known is None:
                unsupported.append(
                    UnsupportedNode(
                        node.name,
                        node.op_type,
                        domain,
                        opset,
                        "no operator of this name exists in ONNX or ONNX Runtime; it needs a "
                        "custom-op library, or replace it in the exported graph",
                    )
                )
                continue
            since = min(known, opset)
        if any(low <= since <= high for low, high in kernels.get(key, ())):
            continue
        if expandable:
            continue
        unsupported.append(
            UnsupportedNode(
                node.name,
                node.op_type,
                domain,
                opset,
                f"ONNX Runtime {ort.__version__} has no CPU kernel for version {since}; "
                "re-export with another opset or replace the op",
            )
        )
    return unsupported


def onnxruntime_load_error(model: Any, path: Path, error: BaseException) -> ModelError:
    """The error for a model ONNX Runtime refused to load: its own reason, and the ops.

    ONNX Runtime's message is the verdict; the nodes named are those of
    :func:`unsupported_onnxruntime_nodes` that its message mentions, so a
    refusal for another reason (a bad shape, a broken file) lists no op.
    """
    reason = _first_line(error)
    suspects = unsupported_onnxruntime_nodes(model) if model is not None else []
    named = [node for node in suspects if node.op_type in reason]
    message = f"ONNX Runtime cannot load {path.name}: {reason}"
    if named:
        listed = "; ".join(node.describe() for node in named[:10])
        more = f" (and {len(named) - 10} more)" if len(named) > 10 else ""
        message += f". Ops it could not place: {listed}{more}"
    return ModelError(message)
