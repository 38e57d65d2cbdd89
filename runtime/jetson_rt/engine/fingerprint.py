"""Engine fingerprints: one build per device class, copied to the others.

A TensorRT engine runs only where it was built: the same module (device-tree
module id: p3767-0003 and p3767-0004 are different Orin Nanos), L4T release,
TensorRT and CUDA versions, GPU or DLA core, model and build flags. Those
inputs, hashed, are the engine's *fingerprint*. Hosts with equal fingerprints
can share one engine: the fleet builds on one host per fingerprint, the
controller keeps the engine, its manifest and side files in its artifact store
(roles/inference_runtime, tasks/engine_cache.yml), and every other host imports
them after checking, here, that

1. the fingerprint recorded with the engine equals this host's own,
2. the engine matches the sha256 and size of its manifest, and
3. the engine deserialises here (TensorRT) or loads in a session (ONNX Runtime);

otherwise it refuses the copy and builds locally.

The fingerprint file ``<artifact>.fingerprint.json`` sits beside the manifest.
``python -m jetson_rt.engine.fingerprint`` takes ``build-engine``'s arguments
plus one action: ``--print`` (this host's fingerprint), ``--write`` (write the
file beside an artifact built here), ``--import DIR`` (check and install a
copied engine) or ``--merge-timing-caches OUT SRC...``; it prints JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jetson_rt.atomic import atomic_write_text, sha256_file
from jetson_rt.engine.options import BuildOptions
from jetson_rt.errors import EngineError, JetsonRtError
from jetson_rt.log import logger

if TYPE_CHECKING:
    from jetson_rt.engine.manifest import Manifest

FINGERPRINT_SUFFIX = ".fingerprint.json"
SCHEMA = 1
# Platform facts that do not change an engine: the carrier board's name (a
# developer kit and a production carrier run the same module's engines) and
# the driver version, which CUDA keeps backward compatible.
_NOT_ENGINE_INPUTS = frozenset({"device_model", "cuda_driver", "integrated_gpu", "module"})


def fingerprint_path(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + FINGERPRINT_SUFFIX)


@dataclass(frozen=True)
class Fingerprint:
    key: str
    inputs: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"fingerprint": self.key, "inputs": self.inputs}


def compute(options: BuildOptions, root: str = "/") -> Fingerprint:
    """This host's fingerprint for ``options`` (the model must exist)."""
    from jetson_rt.engine.build import calibration_fingerprint, platform_fields
    from jetson_rt.platform import identity

    options.validate()
    if not options.model.is_file():
        raise EngineError(f"model {options.model} does not exist")
    ident = identity(root)
    facts = platform_fields(options.backend, root, options)
    flags = dict(options.build_flags(calibration_fingerprint(options)))
    # Where the timing cache lives changes no engine.
    flags.pop("timing_cache", None)
    if options.backend == "onnxruntime":
        target = "cpu"
    elif options.dla_core is not None:
        target = f"dla:{options.dla_core}"
    else:
        target = "gpu"
    inputs: dict[str, Any] = {
        "schema": SCHEMA,
        "module_sku": ident.module_sku,
        "soc": ident.soc,
        "target": target,
        "model_sha256": sha256_file(options.model),
        "build_flags": flags,
        "platform": {k: v for k, v in sorted(facts.items()) if k not in _NOT_ENGINE_INPUTS},
    }
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return Fingerprint(hashlib.sha256(canonical.encode()).hexdigest(), inputs)


def write(options: BuildOptions, root: str = "/") -> Fingerprint:
    """Write the fingerprint beside ``options.output`` (only when it differs)."""
    if not options.output.is_file():
        raise EngineError(f"{options.output} does not exist: build it first")
    fingerprint = compute(options, root)
    path = fingerprint_path(options.output)
    text = json.dumps(fingerprint.to_dict(), indent=2, sort_keys=True) + "\n"
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        atomic_write_text(path, text)
    return fingerprint


def _differences(recorded: dict[str, Any], local: dict[str, Any], prefix: str = "") -> list[str]:
    found = []
    for key in sorted(set(recorded) | set(local)):
        old, new = recorded.get(key), local.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            found += _differences(old, new, f"{prefix}{key}.")
        elif old != new:
            found.append(f"{prefix}{key}: {old!r} here {new!r}")
    return found


def _check_loads(options: BuildOptions, artifact: Path, manifest_flags: dict[str, Any]) -> None:
    """Deserialise (TensorRT) or open (ONNX Runtime) the copied artifact here."""
    if options.backend == "onnxruntime":
        from jetson_rt.backends.onnxruntime import import_onnxruntime

        ort = import_onnxruntime()
        try:
            ort.InferenceSession(str(artifact), providers=["CPUExecutionProvider"])
        except Exception as exc:  # ONNX Runtime raises its own exception classes
            raise EngineError(f"ONNX Runtime cannot load the copy: {exc}") from exc
        return
    from jetson_rt.engine.trt_build import require_tensorrt

    trt = require_tensorrt()
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    dla_core = manifest_flags.get("dla_core")
    if isinstance(dla_core, int):
        runtime.DLA_core = dla_core
    if runtime.deserialize_cuda_engine(artifact.read_bytes()) is None:
        raise EngineError("TensorRT cannot deserialise the copy on this host")


def import_cached(options: BuildOptions, source: Path, root: str = "/") -> dict[str, Any]:
    """Install the engine copied to ``source`` as ``options.output``, or say why not.

    Nothing at ``options.output`` changes unless every check passes; the files
    are copied beside it under temporary names and renamed, the manifest and
    fingerprint last, so a reader never sees a new engine with an old manifest.
    """
    from jetson_rt.engine.manifest import load_manifest, verify_artifact

    local = compute(options, root)
    name = options.output.name
    copied = source / name
    try:
        recorded = json.loads(fingerprint_path(copied).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return _refused(local, f"no readable fingerprint with the copy ({exc})")
    if recorded.get("fingerprint") != local.key:
        differing = _differences(recorded.get("inputs") or {}, local.inputs)
        return _refused(local, "fingerprint differs: " + "; ".join(differing or ["(hash)"]))
    try:
        manifest = verify_artifact(copied)
    except EngineError as exc:
        return _refused(local, str(exc))
    if manifest.source_sha256 != local.inputs["model_sha256"]:
        return _refused(local, "the copy was built from another model (sha256 differs)")
    try:
        _check_loads(options, copied, manifest.build_flags)
    except JetsonRtError as exc:
        return _refused(local, str(exc))
    # Side files first, then the artifact, then the manifest and fingerprint.
    target_dir = options.output.parent
    for file_name in [*sorted(set(manifest.extras.values())), name]:
        _install(source / file_name, target_dir / file_name)
    _localised(manifest, options, root).write(options.output)
    _install(fingerprint_path(copied), fingerprint_path(options.output))
    installed = load_manifest(options.output)
    assert installed is not None
    verify_artifact(options.output)
    logger.info("imported %s (fingerprint %s)", options.output, local.key[:16])
    return {
        "imported": True,
        "fingerprint": local.key,
        "artifact_sha256": installed.artifact_sha256,
        "reason": None,
    }


def _localised(manifest: Manifest, options: BuildOptions, root: str) -> Manifest:
    """The copied manifest with this host's values of the facts that are no engine input.

    ``--if-changed`` compares the manifest's platform with this host's; a fact the
    fingerprint leaves out (the carrier board's name) would otherwise ask for a
    rebuild of a verified copy on every run.
    """
    from jetson_rt.engine.build import platform_fields

    facts = platform_fields(options.backend, root, options)
    platform = dict(manifest.platform)
    for key in _NOT_ENGINE_INPUTS & set(platform):
        platform[key] = facts.get(key)
    environment = {**manifest.environment, "installed_from": "engine cache"}
    return dataclasses.replace(manifest, platform=platform, environment=environment)


def _install(source: Path, target: Path) -> None:
    if not source.is_file():
        raise EngineError(f"{source} is missing from the copied engine")
    with tempfile.NamedTemporaryFile(
        dir=target.parent, prefix=f".{target.name}.", delete=False
    ) as tmp:
        tmp_path = Path(tmp.name)
    try:
        shutil.copyfile(source, tmp_path)
        tmp_path.chmod(0o644)
        tmp_path.replace(target)
    finally:
        tmp_path.unlink(missing_ok=True)


def _refused(local: Fingerprint, reason: str) -> dict[str, Any]:
    logger.warning("cached engine refused: %s", reason)
    return {"imported": False, "fingerprint": local.key, "reason": reason}


def main(argv: list[str] | None = None) -> int:
    """The module's command line (used by the engine_build Ansible module)."""
    from jetson_rt.engine.cli import options_from_args, register

    parser = argparse.ArgumentParser(prog="python -m jetson_rt.engine.fingerprint")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--print", action="store_true", help="this host's fingerprint")
    action.add_argument("--write", action="store_true", help="write it beside the artifact")
    action.add_argument("--import", dest="import_dir", type=Path, help="install a copied engine")
    action.add_argument(
        "--merge-timing-caches",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="OUTPUT SOURCE...: combine TensorRT timing caches (TensorRT's combine)",
    )
    own, rest = parser.parse_known_args(argv)
    try:
        if own.merge_timing_caches:
            from jetson_rt.engine.trt_build import merge_timing_caches

            output, *sources = own.merge_timing_caches
            result: dict[str, Any] = merge_timing_caches(sources, output)
        else:
            build_parser = argparse.ArgumentParser(prog="build-engine")
            register(build_parser.add_subparsers())
            options = options_from_args(build_parser.parse_args(["build-engine", *rest]))
            if own.print:
                result = compute(options).to_dict()
            elif own.write:
                result = write(options).to_dict()
            else:
                result = import_cached(options, own.import_dir)
    except JetsonRtError as exc:
        print(f"ERROR jetson_rt: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
