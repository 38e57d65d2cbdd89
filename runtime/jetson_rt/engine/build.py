"""One build: decide whether it is needed, run it, write the manifest.

The order matters for ``--if-changed``: the cheap inputs (model hash, flags,
platform versions) are compared with the manifest first, and an up-to-date,
intact artifact is left alone without loading the model at all.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jetson_rt import __version__
from jetson_rt.atomic import sha256_file
from jetson_rt.engine.manifest import JsonScalar, Manifest, manifest_path, rebuild_reasons
from jetson_rt.engine.onnx_check import load_checked_model
from jetson_rt.engine.options import BuildOptions
from jetson_rt.errors import ConfigError, EngineError
from jetson_rt.log import logger
from jetson_rt.platform import identity


@dataclass(frozen=True)
class BuildResult:
    changed: bool
    artifact: Path
    manifest: Path
    reasons: list[str]
    build_seconds: float | None = None
    artifact_sha256: str | None = None
    extras: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "artifact": str(self.artifact),
            "manifest": str(self.manifest),
            "reasons": self.reasons,
            "build_seconds": self.build_seconds,
            "artifact_sha256": self.artifact_sha256,
            "extras": self.extras,
        }


def npy_samples(folder: Path) -> list[Path]:
    """The calibration samples in ``folder``, refused when there are none."""
    if not folder.is_dir():
        raise ConfigError(f"calibration folder {folder} does not exist")
    samples = sorted(folder.glob("*.npy"))
    if not samples:
        raise ConfigError(
            f"calibration folder {folder} has no .npy samples: save a few hundred "
            "representative preprocessed inputs there with numpy.save (one per file, "
            "the model's input shape or one batch of it)"
        )
    return samples


def calibration_fingerprint(options: BuildOptions) -> str | None:
    """A hash of what INT8 scales come from: the sample files, else the cache."""
    if options.precision not in ("int8", "best"):
        return None
    digest = hashlib.sha256()
    if options.calib_dir is not None:
        for sample in npy_samples(options.calib_dir):
            digest.update(sample.name.encode() + b"\0" + sha256_file(sample).encode())
        return f"samples:{digest.hexdigest()}"
    if options.calib_cache is None and options.backend == "tensorrt":
        from jetson_rt.engine.quantize import model_is_quantized

        if model_is_quantized(options.model):
            return "qdq"  # explicit INT8: the scales are in the model, hashed already
    if options.calib_cache is None or not options.calib_cache.is_file():
        raise ConfigError(
            f"calibration cache {options.calib_cache} does not exist: give --calib-dir with "
            ".npy samples to create it"
        )
    return f"cache:{sha256_file(options.calib_cache)}"


def host_identity(root: str = "/") -> dict[str, JsonScalar]:
    ident = identity(root)
    return {
        "l4t_release": ident.l4t.release if ident.l4t else None,
        "device_model": ident.model,
        "module": ident.module,
        "soc": ident.soc,
    }


# Build-host facts recorded in the manifest's ``environment`` but not compared by
# --if-changed: they do not change the artifact (TensorRT, the GPU and the L4T
# release do, and are compared).
RECORDED_ONLY = frozenset({"cuda_runtime", "cuda_driver", "integrated_gpu", "onnx"})


def platform_fields(
    backend: str, root: str = "/", options: BuildOptions | None = None
) -> dict[str, JsonScalar]:
    """Every platform fact of a build for ``backend`` on this host.

    For onnxruntime at ``--ort-optimization all`` that includes the CPU
    features the optimised layout assumes (``cpu_features``).
    """
    fields = host_identity(root)
    if backend == "onnxruntime":
        from jetson_rt.engine.ort_build import onnxruntime_platform

        fields.update(onnxruntime_platform(options))
    else:
        from jetson_rt.engine.trt_build import tensorrt_platform

        fields.update(tensorrt_platform())
    return fields


def build(options: BuildOptions, *, if_changed: bool = False, root: str = "/") -> BuildResult:
    """Build ``options.output`` from ``options.model`` (unless up to date and ``if_changed``)."""
    options.validate()
    if not options.model.is_file():
        raise ConfigError(f"model {options.model} does not exist")
    source_sha256 = sha256_file(options.model)
    flags = options.build_flags(calibration_fingerprint(options))
    facts = platform_fields(options.backend, root, options)
    platform = {key: value for key, value in facts.items() if key not in RECORDED_ONLY}
    environment = {key: value for key, value in facts.items() if key in RECORDED_ONLY}

    if if_changed:
        reasons = rebuild_reasons(
            options.output,
            backend=options.backend,
            source_sha256=source_sha256,
            build_flags=flags,
            platform=platform,
        )
        if not reasons:
            logger.info("%s is up to date: nothing built", options.output)
            return BuildResult(
                changed=False,
                artifact=options.output,
                manifest=manifest_path(options.output),
                reasons=[],
            )
        logger.info("building %s: %s", options.output.name, "; ".join(reasons))
    else:
        reasons = ["build requested without --if-changed"]

    checked = load_checked_model(options.model)
    started = time.monotonic()
    if options.backend == "onnxruntime":
        from jetson_rt.engine.ort_build import build_onnxruntime

        extras = build_onnxruntime(options, checked)
    else:
        from jetson_rt.engine.trt_build import build_tensorrt

        extras = build_tensorrt(options)
    seconds = round(time.monotonic() - started, 3)

    if not options.output.is_file():
        raise EngineError(f"the build finished but wrote no {options.output}")
    artifact_sha256 = sha256_file(options.output)
    manifest = Manifest(
        backend=options.backend,
        # Absolute: the runner re-hashes the source model before it loads the artifact.
        source=str(options.model.absolute()),
        source_sha256=source_sha256,
        artifact=options.output.name,
        artifact_sha256=artifact_sha256,
        artifact_bytes=options.output.stat().st_size,
        build_flags=flags,
        platform=platform,
        build_seconds=seconds,
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        extras=extras,
        environment=environment,
        built_by=f"jetson-rt {__version__}",
    )
    written = manifest.write(options.output)
    logger.info("built %s in %.1f s (sha256 %s)", options.output, seconds, artifact_sha256[:16])
    return BuildResult(
        changed=True,
        artifact=options.output,
        manifest=written,
        reasons=reasons,
        build_seconds=seconds,
        artifact_sha256=artifact_sha256,
        extras=extras,
    )
