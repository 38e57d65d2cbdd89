"""What ``build-engine`` is asked to do, validated before anything is built."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from jetson_rt.errors import ConfigError

Precision = Literal["fp32", "fp16", "int8", "best"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "fp16", "int8", "best")
BuildBackend = Literal["tensorrt", "onnxruntime"]
OrtOptimization = Literal["disable", "basic", "extended", "all", "portable"]
# ``portable`` is ``extended``: every ONNX Runtime optimisation that does not
# assume this CPU (``all`` adds NCHWc layout transforms for its vector width).
ORT_OPTIMIZATIONS: tuple[OrtOptimization, ...] = ("disable", "basic", "extended", "all", "portable")

Shapes = dict[str, tuple[int, ...]]

# The name is everything before the last ``:``: TensorFlow exports name inputs
# ``image:0``, and dimensions never hold a ``:``.
_SHAPE_ITEM = re.compile(r"^(?P<name>.+):(?P<dims>\d+(?:x\d+)*)$")


def parse_shapes(text: str, *, option: str = "--shapes") -> Shapes:
    """``input:1x3x224x224,mask:1x224`` (trtexec's syntax) to a dict.

    Each item splits on its last ``:``, so ``image:0:1x3x224x224`` names ``image:0``.
    """
    shapes: Shapes = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        match = _SHAPE_ITEM.match(item)
        if match is None:
            raise ConfigError(
                f"{option} item {item!r} is not NAME:DxDx...; example: input:1x3x224x224 "
                "(a name with ':' is fine, the last ':' starts the dimensions)"
            )
        dims = tuple(int(dim) for dim in match["dims"].split("x"))
        if any(dim <= 0 for dim in dims):
            hint = (
                f" (if {item!r} is the input's name, add its shape: {item}:1x3x224x224)"
                if len(dims) == 1
                else ""
            )
            raise ConfigError(f"{option} item {item!r} has a dimension of 0{hint}")
        shapes[match["name"]] = dims
    return shapes


def format_shapes(shapes: Shapes) -> str:
    return ",".join(f"{name}:{'x'.join(map(str, dims))}" for name, dims in sorted(shapes.items()))


@dataclass(frozen=True)
class BuildOptions:
    """Every input of one build. Paths are resolved by :meth:`validate`."""

    model: Path
    output: Path
    backend: BuildBackend = "tensorrt"
    precision: Precision = "fp16"
    min_shapes: Shapes = field(default_factory=dict)
    opt_shapes: Shapes = field(default_factory=dict)
    max_shapes: Shapes = field(default_factory=dict)
    workspace_mib: int = 1024
    builder_optimization_level: int = 3
    dla_core: int | None = None
    allow_gpu_fallback: bool = False
    calib_dir: Path | None = None
    calib_cache: Path | None = None
    calib_batch_size: int = 1
    timing_cache: Path | None = None
    ort_optimization: OrtOptimization = "all"

    @staticmethod
    def default_output(model: Path, backend: BuildBackend) -> Path:
        suffix = ".engine" if backend == "tensorrt" else ".ort.onnx"
        return model.with_name(model.stem + suffix)

    @property
    def ort_graph_level(self) -> Literal["disable", "basic", "extended", "all"]:
        """ONNX Runtime's level for :attr:`ort_optimization` (``portable`` is ``extended``)."""
        return "extended" if self.ort_optimization == "portable" else self.ort_optimization

    @property
    def ort_cpu_specific(self) -> bool:
        """Whether the optimised model assumes the build host's CPU (level ``all``)."""
        return self.backend == "onnxruntime" and self.ort_optimization == "all"

    def validate(self) -> None:
        """Refuse combinations that cannot build, saying what to change."""
        if self.model.suffix.lower() != ".onnx":
            raise ConfigError(f"{self.model} is not an .onnx file: export the model to ONNX first")
        if self.output.resolve() == self.model.resolve():
            raise ConfigError("the output would overwrite the ONNX model: choose another --output")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if self.workspace_mib <= 0:
            raise ConfigError(
                f"--workspace must be a positive number of MiB, not {self.workspace_mib}"
            )
        if not 0 <= self.builder_optimization_level <= 5:
            raise ConfigError(
                f"--builder-optimization-level must be 0..5, not {self.builder_optimization_level}"
            )
        if self.calib_batch_size <= 0:
            raise ConfigError("--calib-batch-size must be positive")
        if self.ort_optimization not in ORT_OPTIMIZATIONS:
            raise ConfigError(
                f"--ort-optimization must be one of {', '.join(ORT_OPTIMIZATIONS)}, "
                f"not {self.ort_optimization!r}"
            )
        self._validate_shapes()
        if self.backend == "onnxruntime":
            self._validate_onnxruntime()
        else:
            self._validate_tensorrt()

    def _validate_shapes(self) -> None:
        named = set(self.min_shapes) | set(self.opt_shapes) | set(self.max_shapes)
        for name in sorted(named):
            triple = [
                self.min_shapes.get(name),
                self.opt_shapes.get(name),
                self.max_shapes.get(name),
            ]
            if self.backend == "tensorrt" and any(shape is None for shape in triple):
                raise ConfigError(
                    f"input {name!r} needs all of --min-shapes, --opt-shapes and --max-shapes "
                    "(or give --shapes to set all three)"
                )
            present = [shape for shape in triple if shape is not None]
            if len({len(shape) for shape in present}) > 1:
                raise ConfigError(f"min/opt/max shapes of {name!r} have different ranks")
            if len(present) == 3:
                low, mid, high = present
                if not all(a <= b <= c for a, b, c in zip(low, mid, high, strict=True)):
                    raise ConfigError(
                        f"shapes of {name!r} must satisfy min <= opt <= max in every dimension: "
                        f"{low} / {mid} / {high}"
                    )

    def _validate_onnxruntime(self) -> None:
        trt_only = {
            "--dla-core": self.dla_core is not None,
            "--allow-gpu-fallback": self.allow_gpu_fallback,
            "--calib-dir": self.calib_dir is not None,
            "--calib-cache": self.calib_cache is not None,
            "--timing-cache": self.timing_cache is not None,
            f"--precision {self.precision}": self.precision != "fp32",
        }
        used = [flag for flag, set_ in trt_only.items() if set_]
        if used:
            raise ConfigError(
                f"{', '.join(used)} only apply to --backend tensorrt; the onnxruntime build "
                "keeps the model's own precision (fp32): remove them"
            )

    def _validate_tensorrt(self) -> None:
        if self.dla_core is not None:
            if self.dla_core < 0:
                raise ConfigError(f"--dla-core must be >= 0, not {self.dla_core}")
            if self.precision == "fp32":
                raise ConfigError(
                    "DLA runs only fp16 and int8 layers: use --precision fp16, int8 or best "
                    "with --dla-core"
                )
        elif self.allow_gpu_fallback:
            raise ConfigError("--allow-gpu-fallback only applies with --dla-core")
        if (
            self.precision in ("int8", "best")
            and self.calib_dir is None
            and self.calib_cache is None
            and not _is_qdq(self.model)
        ):
            raise ConfigError(
                f"--precision {self.precision} calibrates INT8 scales: give --calib-dir with "
                ".npy samples, or --calib-cache with an existing calibration cache"
            )
        if self.calib_dir is not None and self.precision not in ("int8", "best"):
            raise ConfigError("--calib-dir only applies to --precision int8 or best")

    def build_flags(self, calibration_fingerprint: str | None = None) -> dict[str, Any]:
        """The flags recorded in the manifest and compared by ``--if-changed``."""
        flags: dict[str, Any] = {
            "backend": self.backend,
            "min_shapes": format_shapes(self.min_shapes),
            "opt_shapes": format_shapes(self.opt_shapes),
            "max_shapes": format_shapes(self.max_shapes),
        }
        if self.backend == "onnxruntime":
            flags["ort_optimization"] = self.ort_optimization
            return flags
        flags.update(
            {
                "precision": self.precision,
                "workspace_mib": self.workspace_mib,
                "builder_optimization_level": self.builder_optimization_level,
                "dla_core": self.dla_core,
                "allow_gpu_fallback": self.allow_gpu_fallback,
                "calib_batch_size": self.calib_batch_size
                if self.precision in ("int8", "best")
                else None,
                "calibration": calibration_fingerprint,
                "timing_cache": str(self.timing_cache) if self.timing_cache else None,
            }
        )
        return flags


def _is_qdq(model: Path) -> bool:
    """A Q/DQ model carries its INT8 scales: it needs no calibration data."""
    from jetson_rt.engine.quantize import model_is_quantized

    return model.is_file() and model_is_quantized(model)
