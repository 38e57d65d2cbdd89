"""The runner's YAML configuration, validated strictly.

Every key is known, typed and range-checked; every mistake is reported with its
key path and what to change, all of them at once, before anything is loaded.
``jetson-rt check-config FILE`` runs exactly this validation, so the Ansible role
can refuse a bad file before it restarts the service. The schema is documented
in ``docs/runner.md``.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar, cast

from jetson_rt.errors import ConfigError
from jetson_rt.prepost.check import model_file_problems
from jetson_rt.prepost.spec import PostprocessSpec, PreprocessSpec, parse_stages
from jetson_rt.runner.dataconfig import PublishConfig, VideoSettings, parse_publish, parse_video
from jetson_rt.yamlload import load_yaml

SCHEMA_VERSION = 1

Device = Literal["gpu", "dla", "cpu"]
SourceKind = Literal["synthetic", "npy", "v4l2", "gstreamer"]
FramePolicy = Literal["latest", "skip_n", "deadline"]
WatchdogAction = Literal["exit", "fallback"]

_BACKENDS = ("onnxruntime", "tensorrt")
_DEVICES = ("gpu", "dla", "cpu")
_SOURCES = ("synthetic", "npy", "v4l2", "gstreamer")
_POLICIES = ("latest", "skip_n", "deadline")
_ACTIONS = ("exit", "fallback")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
# The tier index ``fallback_tier: emergency`` resolves to (the last-result tier).
EMERGENCY = "emergency"

_N = TypeVar("_N", int, float)


@dataclass(frozen=True)
class ModelConfig:
    """One model the runner loads at startup; tasks refer to it by name."""

    name: str
    backend: str
    path: Path
    device: Device
    shapes: dict[str, tuple[int, ...]]
    options: dict[str, object]
    # Load only when the manifest matches the file and its source model (false: logged).
    verify: bool = True
    # Pre/post stages around the model (jetson_rt.prepost.spec); None: the raw tensors.
    preprocess: PreprocessSpec | None = None
    postprocess: PostprocessSpec | None = None


@dataclass(frozen=True)
class InputConfig:
    source: SourceKind = "synthetic"
    path: Path | None = None
    device: str = "/dev/video0"
    pipeline: str = ""
    policy: FramePolicy = "latest"
    skip: int = 2
    max_age_ms: float = 33.0
    seed: int = 0
    capacity: int = 4
    video: VideoSettings = field(default_factory=VideoSettings)


@dataclass(frozen=True)
class SlaConfig:
    window_s: float = 60.0
    target_pct: float = 99.9


@dataclass(frozen=True)
class DegradationConfig:
    violation_fraction: float = 0.9
    step_down_after: int = 3
    step_up_after: int = 50
    emergency: bool = True
    emergency_hold_ms: float = 1000.0


@dataclass(frozen=True)
class TaskConfig:
    """One inference task: a ladder of model tiers, a deadline and an input."""

    name: str
    tiers: tuple[str, ...]
    priority: int
    period_ms: float
    deadline_ms: float
    input: InputConfig
    sla: SlaConfig
    degradation: DegradationConfig
    # Backend errors in a row after which the runner exits for a restart.
    max_consecutive_errors: int = 10


@dataclass(frozen=True)
class WarmupConfig:
    min_iterations: int = 20
    max_iterations: int = 500
    window: int = 20
    max_cv: float = 0.10


@dataclass(frozen=True)
class RtConfig:
    priority: int = 80
    # None: the kernel's isolated CPUs; empty: leave the affinity alone.
    cpus: tuple[int, ...] | None = None
    mlockall: bool = True
    # Python hands the GIL to a waiting thread after this long; it bounds how long a
    # background thread (stats, health, metrics) can hold up the loop.
    switch_interval_ms: float = 0.5


@dataclass(frozen=True)
class WatchdogConfig:
    timeout_ms: float = 500.0
    action: WatchdogAction = "exit"
    # A tier index, or -1 for the emergency (last-result) tier.
    fallback_tier: int = -1


@dataclass(frozen=True)
class ThermalConfig:
    enabled: bool = True
    throttle_c: float = 82.0
    resume_c: float = 77.0
    tier: int = 1


@dataclass(frozen=True)
class HealthConfig:
    interval_s: float = 5.0
    min_mem_available_mb: int = 500
    gpu_clock_min_ratio: float = 0.95


@dataclass(frozen=True)
class StatsConfig:
    path: Path | None = None
    interval_s: float = 5.0
    summary_interval_s: float = 10.0


@dataclass(frozen=True)
class PrometheusConfig:
    port: int | None = None
    address: str = "0.0.0.0"  # noqa: S104 - a scrape endpoint listens on every interface by default


@dataclass(frozen=True)
class RunnerConfig:
    """The whole validated file."""

    models: dict[str, ModelConfig]
    tasks: tuple[TaskConfig, ...]
    warmup: WarmupConfig = field(default_factory=WarmupConfig)
    rt: RtConfig = field(default_factory=RtConfig)
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    thermal: ThermalConfig = field(default_factory=ThermalConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    prometheus: PrometheusConfig = field(default_factory=PrometheusConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    source: Path | None = None


class _Errors:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")


_TYPE_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (list, "a list"),
    (dict, "a mapping"),
)


def _show(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut short: an error message never echoes a huge value."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    for kind, name in _TYPE_NAMES:
        if isinstance(value, kind):
            return name
    return type(value).__name__


class _Section:
    """A mapping being validated: typed getters that record errors, then :meth:`done`."""

    def __init__(self, data: object, path: str, errors: _Errors) -> None:
        self.path = path
        self.errors = errors
        self.valid = isinstance(data, dict)
        if data is None:
            self.data: dict[str, object] = {}
            self.valid = True
        elif isinstance(data, dict):
            self.data = dict(data)
        else:
            self.data = {}
            errors.add(path or "<top>", f"must be a mapping, got {_type_name(data)}")
        self._seen: set[str] = set()

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def raw(self, key: str) -> object:
        self._seen.add(key)
        return self.data.get(key)

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def int_(self, key: str, default: int, lo: int | None = None, hi: int | None = None) -> int:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.errors.add(self.key_path(key), f"must be an integer, got {_type_name(value)}")
            return default
        return self._range(key, value, lo, hi)

    def float_(
        self,
        key: str,
        default: float,
        lo: float | None = None,
        hi: float | None = None,
        *,
        lo_open: bool = False,
    ) -> float:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.errors.add(self.key_path(key), f"must be a number, got {_type_name(value)}")
            return default
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            self.errors.add(self.key_path(key), f"must be a finite number, got {number}")
            return default
        if lo_open and lo is not None and number <= lo:
            self.errors.add(self.key_path(key), f"must be greater than {lo:g}, got {number:g}")
            return default
        return self._range(key, number, None if lo_open else lo, hi)

    def _range(self, key: str, value: _N, lo: float | None, hi: float | None) -> _N:
        if lo is not None and value < lo:
            self.errors.add(self.key_path(key), f"must be at least {lo:g}, got {value:g}")
            return value
        if hi is not None and value > hi:
            self.errors.add(self.key_path(key), f"must be at most {hi:g}, got {value:g}")
        return value

    def bool_(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.errors.add(
                self.key_path(key), f"must be true or false, got {_type_name(value)} {_show(value)}"
            )
            return default
        return value

    def str_(self, key: str, default: str) -> str:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, str):
            self.errors.add(self.key_path(key), f"must be a string, got {_type_name(value)}")
            return default
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, str) or value not in choices:
            self.errors.add(
                self.key_path(key),
                f"must be one of {', '.join(choices)}, got {_show(value)}",
            )
            return default
        return value

    def done(self) -> None:
        """Report every key nobody asked for, with the closest known key."""
        if not self.valid:
            return
        for key in self.data:
            if key in self._seen:
                continue
            name = _show(key).strip("'\"") if not isinstance(key, str) or len(key) > 60 else key
            hint = difflib.get_close_matches(name, sorted(self._seen), n=1)
            known = ", ".join(sorted(self._seen))
            suggestion = f"did you mean {hint[0]!r}?" if hint else f"known keys: {known}"
            self.errors.add(self.key_path(name), f"unknown key; {suggestion}")


# Bounds on what a shape or batch may ask the backend to allocate up front.
MAX_DIMS = 8
MAX_DIM = 1 << 20
MAX_ELEMENTS = 1 << 30
MAX_BATCH = 4096


def _shape(value: object, path: str, errors: _Errors) -> tuple[int, ...] | None:
    if not isinstance(value, list) or not value or len(value) > MAX_DIMS:
        errors.add(
            path,
            f"must be a list of 1 to {MAX_DIMS} positive integers, got {_type_name(value)}"
            + (f" of {len(value)}" if isinstance(value, list) else ""),
        )
        return None
    dims: list[int] = []
    for index, dim in enumerate(value):
        if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= MAX_DIM:
            errors.add(
                f"{path}[{index}]", f"must be an integer from 1 to {MAX_DIM}, got {_show(dim)}"
            )
            return None
        dims.append(dim)
    if math.prod(dims) > MAX_ELEMENTS:
        errors.add(path, f"has {math.prod(dims)} elements; at most {MAX_ELEMENTS} are allocated")
        return None
    return tuple(dims)


def _path_problem(value: str) -> str | None:
    """Why ``value`` cannot name a file, or None."""
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        return f"must not contain control characters, got {_show(value)}"
    if len(value) > 4096:
        return f"is {len(value)} characters long; a path has at most 4096"
    return None


def _checked_path(section: _Section, key: str) -> str:
    """The path string under ``key`` ("" when absent or refused)."""
    raw = section.str_(key, "")
    problem = _path_problem(raw) if raw else None
    if problem is not None:
        section.errors.add(section.key_path(key), problem)
        return ""
    return raw


# The options each backend takes from ``models.NAME.options``, and what each must be.
# tests/unit/runner/test_config_options.py checks this table against the backends'
# keyword arguments, so a new backend option cannot be missed here.
OptionCheck = tuple[str, object]
_THREADS: OptionCheck = ("int", (0, 256))
_BACKEND_OPTIONS: dict[str, dict[str, OptionCheck]] = {
    "onnxruntime": {
        "batch": ("int", (1, MAX_BATCH)),
        "intra_op_threads": _THREADS,
        "inter_op_threads": _THREADS,
        "graph_optimization": ("choice", ("disable", "basic", "extended", "all")),
        "optimized_model_path": ("path", None),
        "allow_spinning": ("bool", None),
        "deterministic": ("bool", None),
    },
    "tensorrt": {
        "batch": ("int", (1, MAX_BATCH)),
        "dla_core": ("int", (0, 15)),
        "use_cuda_graph": ("bool", None),
        "device": ("int", (0, 15)),
        "shape_values": ("values", None),
    },
}
# Backend keyword arguments the configuration sets elsewhere.
_OPTIONS_ELSEWHERE = {
    "input_shapes": "give shapes under models.{name}.shapes",
    "verify": "set models.{name}.verify (it defaults to true)",
}


def _options(
    raw: object, where: str, backend: str, name: str, errors: _Errors
) -> dict[str, object]:
    if not isinstance(raw, dict):
        errors.add(
            where, f"must be a mapping of backend option names to values, got {_type_name(raw)}"
        )
        return {}
    known = _BACKEND_OPTIONS.get(backend)
    options: dict[str, object] = {}
    section = _Section(raw, where, errors)
    for key in raw:
        if not isinstance(key, str):
            errors.add(where, f"option names are strings, got {_show(key)}")
            continue
        if key in _OPTIONS_ELSEWHERE:
            section.raw(key)
            errors.add(
                section.key_path(key),
                "is not a backend option here: " + _OPTIONS_ELSEWHERE[key].format(name=name),
            )
            continue
        if known is None or key not in known:
            continue  # reported by section.done() with the closest known option
        kind, bounds = known[key]
        if kind == "int":
            lo, hi = cast("tuple[int, int]", bounds)
            options[key] = section.int_(key, 0, lo, hi)
        elif kind == "bool":
            options[key] = section.bool_(key, False)
        elif kind == "choice":
            options[key] = section.choice(key, "", cast("tuple[str, ...]", bounds))
        elif kind == "values":
            options[key] = _shape_values(section.raw(key), section.key_path(key), errors)
        else:
            options[key] = _checked_path(section, key)
    if known is not None:
        for key in known:
            section.raw(key)  # every known option is a valid suggestion
        section.done()
    return {key: value for key, value in options.items() if value not in ("", None)}


def _shape_values(raw: object, where: str, errors: _Errors) -> dict[str, list[int]] | None:
    """Values of shape-tensor inputs: ``{name: [int, ...]}``."""
    if not isinstance(raw, dict) or not raw:
        errors.add(where, "must map shape-tensor input names to lists of integers")
        return None
    values: dict[str, list[int]] = {}
    for name, items in raw.items():
        ok = isinstance(items, list) and 0 < len(items) <= MAX_DIMS
        if ok and all(
            isinstance(v, int) and not isinstance(v, bool) and abs(v) < 2**31 for v in items
        ):
            values[str(name)] = list(items)
        else:
            errors.add(
                f"{where}.{_show(name)}",
                f"must be a list of 1 to {MAX_DIMS} 32-bit integers, got {_show(items)}",
            )
    return values


def check_bench_options(backend: str, options: dict[str, object]) -> dict[str, object]:
    """``jetson-rt bench --option`` values, checked with the same table as runner.yaml's
    (``input_shapes`` and ``verify`` are allowed there: bench has no other way to set them)."""
    errors = _Errors()
    rest = {key: value for key, value in options.items() if key not in _OPTIONS_ELSEWHERE}
    checked = _options(rest, "--option", backend, "", errors)
    if "verify" in options:
        if not isinstance(options["verify"], bool):
            errors.add("--option verify", f"must be true or false, got {_show(options['verify'])}")
        else:
            checked["verify"] = options["verify"]
    raw_shapes = options.get("input_shapes")
    if raw_shapes is not None:
        if not isinstance(raw_shapes, dict) or not raw_shapes:
            errors.add("--option input_shapes", "must map input names to shapes, e.g. {x: [1, 64]}")
        else:
            shapes = {
                str(name): _shape(dims, f"--option input_shapes.{name}", errors)
                for name, dims in raw_shapes.items()
            }
            checked["input_shapes"] = {name: list(dims or ()) for name, dims in shapes.items()}
    if errors.items:
        raise ConfigError(problem_list("invalid --option", errors.items))
    return checked


def _path(value: str, base: Path | None) -> Path:
    path = Path(value).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    return path


def _models(node: object, errors: _Errors, base: Path | None) -> dict[str, ModelConfig]:
    models: dict[str, ModelConfig] = {}
    if not isinstance(node, dict) or not node:
        errors.add("models", "must be a mapping of model name to settings, with at least one model")
        return models
    for name, body in node.items():
        if not isinstance(name, str) or not _NAME.match(name):
            errors.add(
                f"models.{name}", "model names start with a letter and use letters, digits, _ . -"
            )
            continue
        models[name] = _model(name, body, errors, base)
    return models


def _model(name: str, body: object, errors: _Errors, base: Path | None) -> ModelConfig:
    where = f"models.{name}"
    section = _Section(body, where, errors)
    backend = section.choice("backend", "", _BACKENDS)
    if not section.has("backend"):
        errors.add(f"{where}.backend", f"is required: one of {', '.join(_BACKENDS)}")
    raw_path = _checked_path(section, "path")
    if not section.has("path") or section.raw("path") == "":
        errors.add(f"{where}.path", "is required: the ONNX model or TensorRT engine file")
    default_device = "gpu" if backend == "tensorrt" else "cpu"
    device = section.choice("device", default_device, _DEVICES)
    if backend == "onnxruntime" and device != "cpu":
        errors.add(
            f"{where}.device",
            f"the onnxruntime backend runs on the CPU; use device: cpu, or backend: tensorrt "
            f"for {device}",
        )
    shapes: dict[str, tuple[int, ...]] = {}
    raw_shapes = section.raw("shapes")
    if raw_shapes is not None:
        if not isinstance(raw_shapes, dict):
            errors.add(
                f"{where}.shapes",
                "must map input names to shapes, e.g. {input: [1, 3, 224, 224]}",
            )
        else:
            for input_name, dims in raw_shapes.items():
                parsed = _shape(dims, f"{where}.shapes.{input_name}", errors)
                if parsed is not None:
                    shapes[str(input_name)] = parsed
    options: dict[str, object] = {}
    raw_options = section.raw("options")
    if raw_options is not None:
        options = _options(raw_options, f"{where}.options", backend, name, errors)
    batch = options.get("batch")
    for input_name, dims in shapes.items():
        if isinstance(batch, int) and dims[0] != batch:
            errors.add(
                f"{where}.options.batch",
                f"is {batch} but shapes.{input_name} starts with {dims[0]}: "
                "give one or make them agree",
            )
    verify = section.bool_("verify", True)
    preprocess, postprocess = parse_stages(
        section.raw("preprocess"), section.raw("postprocess"), where, shapes, errors.add
    )
    section.done()
    return ModelConfig(
        name=name,
        backend=backend,
        path=_path(raw_path, base) if raw_path else Path(),
        device=cast("Device", device),
        shapes=shapes,
        options=options,
        verify=verify,
        preprocess=preprocess,
        postprocess=postprocess,
    )


def _input(node: object, where: str, errors: _Errors, base: Path | None) -> InputConfig:
    section = _Section(node, where, errors)
    source = section.choice("source", "synthetic", _SOURCES)
    raw_path = _checked_path(section, "path")
    config = InputConfig(
        source=cast("SourceKind", source),
        path=_path(raw_path, base) if raw_path else None,
        device=section.str_("device", "/dev/video0"),
        pipeline=section.str_("pipeline", ""),
        policy=cast("FramePolicy", section.choice("policy", "latest", _POLICIES)),
        skip=section.int_("skip", 2, 1, 1000),
        max_age_ms=section.float_("max_age_ms", 33.0, 0.0, 60_000.0, lo_open=True),
        seed=section.int_("seed", 0, 0, 2**32 - 1),
        capacity=section.int_("capacity", 4, 1, 64),
        video=parse_video(section, errors),
    )
    section.done()
    if source == "npy" and config.path is None:
        errors.add(f"{where}.path", "is required for source: npy (a folder of .npy files)")
    if source == "gstreamer" and not config.pipeline:
        errors.add(f"{where}.pipeline", "is required for source: gstreamer (ending in appsink)")
    return config


def _tasks(
    node: object, models: Mapping[str, ModelConfig], errors: _Errors, base: Path | None
) -> tuple[TaskConfig, ...]:
    if not isinstance(node, list) or not node:
        errors.add("tasks", "must be a list with at least one task")
        return ()
    tasks = tuple(_task(index, body, models, errors, base) for index, body in enumerate(node))
    seen: set[str] = set()
    for index, task in enumerate(tasks):
        if task.name in seen:
            errors.add(f"tasks[{index}].name", f"duplicate task name {task.name!r}")
        seen.add(task.name)
    return tasks


def _tier_list(
    raw_tiers: object, where: str, models: Mapping[str, ModelConfig], errors: _Errors
) -> list[str]:
    if isinstance(raw_tiers, str):
        raw_tiers = [raw_tiers]
    if not isinstance(raw_tiers, list) or not raw_tiers:
        errors.add(where, "is required: a list of model names, best first")
        return []
    tiers: list[str] = []
    known = ", ".join(sorted(models)) or "none defined"
    for index, tier in enumerate(raw_tiers):
        if not isinstance(tier, str) or tier not in models:
            errors.add(f"{where}[{index}]", f"{tier!r} is not a model under models: ({known})")
        else:
            tiers.append(tier)
    return tiers


def _task(
    index: int,
    body: object,
    models: Mapping[str, ModelConfig],
    errors: _Errors,
    base: Path | None,
) -> TaskConfig:
    where = f"tasks[{index}]"
    section = _Section(body, where, errors)
    name = section.str_("name", f"task{index}")
    if not _NAME.match(name):
        errors.add(f"{where}.name", "task names start with a letter and use letters, digits, _ . -")
    tiers = _tier_list(section.raw("tiers"), f"{where}.tiers", models, errors)
    priority = section.int_("priority", 50, 1, 99)
    max_errors = section.int_("max_consecutive_errors", 10, 1, 1_000_000)
    period_ms = section.float_("period_ms", 0.0, 0.0, 60_000.0)
    deadline_ms = section.float_("deadline_ms", 0.0, 0.0, 60_000.0, lo_open=True)
    if not section.has("deadline_ms"):
        errors.add(f"{where}.deadline_ms", "is required: the per-inference deadline in ms")
    input_config = _input(section.raw("input"), f"{where}.input", errors, base)
    sla_section = _Section(section.raw("sla"), f"{where}.sla", errors)
    sla = SlaConfig(
        window_s=sla_section.float_("window_s", 60.0, 1.0, 86_400.0),
        target_pct=sla_section.float_("target_pct", 99.9, 0.0, 100.0, lo_open=True),
    )
    sla_section.done()
    deg = _Section(section.raw("degradation"), f"{where}.degradation", errors)
    degradation = DegradationConfig(
        violation_fraction=deg.float_("violation_fraction", 0.9, 0.0, 1.0, lo_open=True),
        step_down_after=deg.int_("step_down_after", 3, 1, 1_000_000),
        step_up_after=deg.int_("step_up_after", 50, 1, 1_000_000),
        emergency=deg.bool_("emergency", True),
        emergency_hold_ms=deg.float_("emergency_hold_ms", 1000.0, 0.0, 3_600_000.0),
    )
    deg.done()
    section.done()
    if input_config.source != "synthetic":
        for tier in tiers[1:]:
            if models[tier].shapes != models[tiers[0]].shapes:
                errors.add(
                    f"{where}.tiers",
                    f"with source {input_config.source} every tier needs the same input shapes: "
                    f"models.{tier}.shapes differs from models.{tiers[0]}.shapes",
                )
    return TaskConfig(
        name=name,
        tiers=tuple(tiers),
        priority=priority,
        period_ms=period_ms,
        deadline_ms=deadline_ms,
        input=input_config,
        sla=sla,
        degradation=degradation,
        max_consecutive_errors=max_errors,
    )


def _rt(node: object, errors: _Errors) -> RtConfig:
    section = _Section(node, "rt", errors)
    priority = section.int_("priority", 80, 0, 99)
    raw_cpus = section.raw("cpus")
    cpus: tuple[int, ...] | None = None
    if raw_cpus is None or raw_cpus == "isolated":
        cpus = None
    elif raw_cpus == "all":
        cpus = ()
    elif isinstance(raw_cpus, list) and raw_cpus:
        parsed: list[int] = []
        for index, cpu in enumerate(raw_cpus):
            if isinstance(cpu, bool) or not isinstance(cpu, int) or not 0 <= cpu < 1024:
                errors.add(f"rt.cpus[{index}]", f"must be a CPU number (0-1023), got {cpu!r}")
            else:
                parsed.append(cpu)
        if len(set(parsed)) != len(parsed):
            errors.add("rt.cpus", "lists a CPU twice")
        cpus = tuple(parsed)
    else:
        errors.add(
            "rt.cpus", f"must be 'isolated', 'all' or a list of CPU numbers, got {raw_cpus!r}"
        )
    config = RtConfig(
        priority=priority,
        cpus=cpus,
        mlockall=section.bool_("mlockall", True),
        switch_interval_ms=section.float_("switch_interval_ms", 0.5, 0.05, 100.0),
    )
    section.done()
    return config


def _watchdog(node: object, errors: _Errors) -> WatchdogConfig:
    section = _Section(node, "watchdog", errors)
    timeout_ms = section.float_("timeout_ms", 500.0, 1.0, 600_000.0)
    action = section.choice("action", "exit", _ACTIONS)
    raw_tier = section.raw("fallback_tier")
    tier = -1
    if raw_tier is None or raw_tier == EMERGENCY:
        tier = -1
    elif isinstance(raw_tier, int) and not isinstance(raw_tier, bool) and raw_tier >= 0:
        tier = raw_tier
    else:
        errors.add(
            "watchdog.fallback_tier",
            f"must be a tier index (0 = best) or 'emergency', got {raw_tier!r}",
        )
    section.done()
    return WatchdogConfig(
        timeout_ms=timeout_ms, action=cast("WatchdogAction", action), fallback_tier=tier
    )


def _thermal(node: object, errors: _Errors) -> ThermalConfig:
    section = _Section(node, "thermal", errors)
    config = ThermalConfig(
        enabled=section.bool_("enabled", True),
        throttle_c=section.float_("throttle_c", 82.0, 20.0, 125.0),
        resume_c=section.float_("resume_c", 77.0, 0.0, 125.0),
        tier=section.int_("tier", 1, 1, 100),
    )
    section.done()
    if config.resume_c >= config.throttle_c:
        errors.add(
            "thermal.resume_c",
            f"must be below throttle_c ({config.throttle_c:g}) so the tier does not flap",
        )
    return config


def _health(node: object, errors: _Errors) -> HealthConfig:
    section = _Section(node, "health", errors)
    config = HealthConfig(
        interval_s=section.float_("interval_s", 5.0, 0.05, 3600.0),
        min_mem_available_mb=section.int_("min_mem_available_mb", 500, 0, 1_000_000),
        gpu_clock_min_ratio=section.float_("gpu_clock_min_ratio", 0.95, 0.0, 1.0),
    )
    section.done()
    return config


def _stats(node: object, errors: _Errors, base: Path | None) -> StatsConfig:
    section = _Section(node, "stats", errors)
    raw_path = _checked_path(section, "path")
    config = StatsConfig(
        path=_path(raw_path, base) if raw_path else None,
        interval_s=section.float_("interval_s", 5.0, 0.05, 3600.0),
        summary_interval_s=section.float_("summary_interval_s", 10.0, 0.0, 86_400.0),
    )
    section.done()
    return config


def _prometheus(node: object, errors: _Errors) -> PrometheusConfig:
    section = _Section(node, "prometheus", errors)
    port: int | None = None
    if section.has("port"):
        port = section.int_("port", 0, 0, 65535)
    else:
        section.raw("port")
    config = PrometheusConfig(port=port, address=section.str_("address", "0.0.0.0"))  # noqa: S104 - see PrometheusConfig
    if not _listen_address(config.address):
        errors.add(
            "prometheus.address",
            f"must be an IP address or a host name, got {_show(config.address)}",
        )
    section.done()
    return config


_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$")


def _listen_address(address: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(address)
    except ValueError:
        return bool(_HOST_NAME.match(address))
    return True


def parse_config(data: object, source: Path | None = None) -> RunnerConfig:
    """Validate a loaded YAML document; raise :class:`ConfigError` listing every problem."""
    errors = _Errors()
    base = source.parent if source is not None else None
    top = _Section(data, "", errors)
    version = top.raw("schema_version")
    if version is None:
        errors.add(
            "schema_version", f"is required; this runner reads schema_version: {SCHEMA_VERSION}"
        )
    elif version != SCHEMA_VERSION:
        errors.add(
            "schema_version",
            f"this runner reads schema_version {SCHEMA_VERSION}, got {version!r}",
        )
    models = _models(top.raw("models"), errors, base)
    tasks = _tasks(top.raw("tasks"), models, errors, base)
    warm = _Section(top.raw("warmup"), "warmup", errors)
    warmup = WarmupConfig(
        min_iterations=warm.int_("min_iterations", 20, 1, 1_000_000),
        max_iterations=warm.int_("max_iterations", 500, 1, 1_000_000),
        window=warm.int_("window", 20, 2, 100_000),
        max_cv=warm.float_("max_cv", 0.10, 0.0, 10.0, lo_open=True),
    )
    warm.done()
    if warmup.max_iterations < warmup.min_iterations:
        errors.add("warmup.max_iterations", "must be at least warmup.min_iterations")
    if warmup.max_iterations < warmup.window:
        errors.add("warmup.max_iterations", "must be at least warmup.window")
    rt = _rt(top.raw("rt"), errors)
    watchdog = _watchdog(top.raw("watchdog"), errors)
    thermal = _thermal(top.raw("thermal"), errors)
    health = _health(top.raw("health"), errors)
    stats = _stats(top.raw("stats"), errors, base)
    prometheus = _prometheus(top.raw("prometheus"), errors)
    publish = parse_publish(_Section(top.raw("publish"), "publish", errors), errors)
    top.done()
    for index, task in enumerate(tasks):
        if task.deadline_ms >= watchdog.timeout_ms:
            errors.add(
                "watchdog.timeout_ms",
                f"is {watchdog.timeout_ms:g} ms, not above tasks[{index}].deadline_ms "
                f"({task.deadline_ms:g} ms): a slow but legal inference would trip it; "
                "make the timeout several deadlines long",
            )
    if watchdog.action == "fallback":
        for index, task in enumerate(tasks):
            if watchdog.fallback_tier < 0 and not task.degradation.emergency:
                errors.add(
                    "watchdog.fallback_tier",
                    f"is 'emergency' but tasks[{index}].degradation.emergency is false; "
                    "enable the emergency tier or name a model tier",
                )
            if watchdog.fallback_tier >= len(task.tiers) > 0:
                errors.add(
                    "watchdog.fallback_tier",
                    f"is {watchdog.fallback_tier} but tasks[{index}] has {len(task.tiers)} tier(s)",
                )
    if errors.items:
        where = f" in {source}" if source is not None else ""
        raise ConfigError(problem_list(f"invalid runner configuration{where}", errors.items))
    return RunnerConfig(
        models=models,
        tasks=tasks,
        warmup=warmup,
        rt=rt,
        watchdog=watchdog,
        thermal=thermal,
        health=health,
        stats=stats,
        prometheus=prometheus,
        publish=publish,
        source=source,
    )


def problem_list(title: str, items: list[str]) -> str:
    """``title: first problem``, then the others one per line: the first line says what."""
    if len(items) == 1:
        return f"{title}: {items[0]}"
    return f"{title}: {items[0]} (and {len(items) - 1} more below)\n  " + "\n  ".join(items[1:])


def load_config(path: Path) -> RunnerConfig:
    """Read (see :func:`jetson_rt.yamlload.load_yaml`) and validate ``path``."""
    return parse_config(load_yaml(path, "runner configuration"), path)


def engine_problem(model: ModelConfig) -> str | None:
    """Why ``model``'s file must not be loaded, or None.

    The file must have its manifest beside it, and both its own sha256 and its
    source model's must match the manifest (:func:`jetson_rt.backends.verify_model`).
    ``check-config`` and the runner both ask this before loading anything.
    """
    if not model.verify:
        return None
    from jetson_rt.backends import verify_model
    from jetson_rt.errors import JetsonRtError

    try:
        verify_model(model.path)
    except JetsonRtError as exc:
        return f"models.{model.name}: {exc}"
    except OSError as exc:
        return f"models.{model.name}: cannot read {exc.filename or model.path}: {exc.strerror}"
    return None


def check_files(config: RunnerConfig, *, stats_path: Path | None = None) -> list[str]:
    """Problems with files the configuration names (missing model, empty input folder)."""
    problems: list[str] = []
    for model in config.models.values():
        if not model.path.is_file():
            problems.append(f"models.{model.name}.path: {model.path} does not exist")
            continue
        problem = engine_problem(model)
        if problem is not None:
            problems.append(problem)
        problems += model_file_problems(
            model.name, model.path, model.preprocess, model.postprocess, model.shapes
        )
    stats = stats_path if stats_path is not None else config.stats.path
    if stats is not None and stats.is_dir():
        problems.append(f"stats.path: {stats} is a folder; name the stats file")
    for index, task in enumerate(config.tasks):
        folder = task.input.path
        if task.input.source == "npy" and folder is not None:
            if not folder.is_dir():
                problems.append(f"tasks[{index}].input.path: {folder} is not a folder")
            elif not any(folder.glob("*.npy")):
                problems.append(f"tasks[{index}].input.path: {folder} holds no .npy files")
    return problems
