"""The manifest beside every built artifact, and the checks made against it.

``model.engine`` gets ``model.engine.manifest.json``: the ONNX file's sha256,
the artifact's sha256 and size, every build flag, and the platform it was built
on (TensorRT/CUDA or ONNX Runtime versions, device, SoC, L4T release). Two
questions are answered from it:

* *Is the artifact intact?* :func:`verify_artifact` re-hashes the file; a
  backend calls it before loading.
* *Would a build change anything?* :func:`rebuild_reasons` compares the recorded
  inputs with the requested ones; ``build-engine --if-changed`` builds only
  when it returns reasons.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jetson_rt.atomic import atomic_write_text
from jetson_rt.errors import EngineError

SCHEMA_VERSION = 1
MANIFEST_SUFFIX = ".manifest.json"

# Digests of files already hashed by this process, by what fstat says of them: a
# runner start checks an engine in `check-config`'s validator, before loading and in
# the backend, and an engine is tens to hundreds of MB. Any write to the file changes
# its ctime (which no user can set back), a replacement its inode: both miss here.
_DIGESTS: dict[tuple[int, int, int, int, int], str] = {}
_DIGESTS_MAX = 64
_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """The sha256 of ``path``, hashed once per process while the file is unchanged."""
    with path.open("rb") as handle:
        info = os.fstat(handle.fileno())
        key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
        digest = _DIGESTS.get(key)
        if digest is not None:
            return digest
        hasher = hashlib.sha256()
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
        after = os.fstat(handle.fileno())
    digest = hasher.hexdigest()
    # Written to while being read: the digest is right for nothing; do not keep it.
    if (after.st_size, after.st_mtime_ns, after.st_ctime_ns) == key[2:]:
        if len(_DIGESTS) >= _DIGESTS_MAX:
            _DIGESTS.clear()
        _DIGESTS[key] = digest
    return digest


JsonScalar = str | int | float | bool | None


def manifest_path(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + MANIFEST_SUFFIX)


@dataclass(frozen=True)
class Manifest:
    """How one artifact was built. Field names are the JSON keys."""

    backend: str
    source: str
    source_sha256: str
    artifact: str
    artifact_sha256: str
    artifact_bytes: int
    # Every option that shaped the artifact (precision, shapes, DLA core, ...).
    build_flags: dict[str, Any]
    # Versions and identity of the building host; None where not applicable.
    platform: dict[str, JsonScalar]
    build_seconds: float
    built_at: str
    schema: int = SCHEMA_VERSION
    # Recorded, not compared: facts of the build host that do not change the
    # artifact (CUDA runtime and driver versions, ...), and the jetson-rt
    # version that built it (an upgrade alone must not rebuild every engine).
    environment: dict[str, JsonScalar] = field(default_factory=dict)
    built_by: str = ""
    # Side files written with the artifact (layer report, calibration cache).
    extras: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, *, origin: Path) -> Manifest:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EngineError(
                f"manifest {origin} is not valid JSON ({exc}): rebuild the engine "
                "with `jetson-rt build-engine`"
            ) from exc
        if not isinstance(data, dict):
            raise EngineError(f"manifest {origin} is not a JSON object: rebuild the engine")
        if data.get("schema") != SCHEMA_VERSION:
            raise EngineError(
                f"manifest {origin} has schema {data.get('schema')!r}, this jetson-rt reads "
                f"{SCHEMA_VERSION}: rebuild the engine with this version"
            )
        try:
            return cls(**data)
        except TypeError as exc:
            raise EngineError(
                f"manifest {origin} does not have the expected fields ({exc}): rebuild the engine"
            ) from exc

    def write(self, artifact: Path) -> Path:
        path = manifest_path(artifact)
        atomic_write_text(path, self.to_json())
        return path


def load_manifest(artifact: Path) -> Manifest | None:
    """The manifest beside ``artifact``, ``None`` if there is none."""
    path = manifest_path(artifact)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise EngineError(f"cannot read manifest {path}: {exc}") from exc
    return Manifest.from_json(text, origin=path)


_FIELD_TYPES: dict[str, type] = {
    "artifact": str,
    "artifact_sha256": str,
    "artifact_bytes": int,
    "source": str,
    "source_sha256": str,
}


def _check_field_types(manifest: Manifest, origin: Path) -> None:
    """Refuse a manifest whose checked fields have the wrong JSON type (a hand edit)."""
    for name, kind in _FIELD_TYPES.items():
        value = getattr(manifest, name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise EngineError(
                f"manifest {origin}: {name} must be a {'string' if kind is str else 'number'}, "
                f"got {type(value).__name__}: rebuild the engine"
            )


def verify_artifact(artifact: Path) -> Manifest:
    """Check ``artifact`` against its manifest; return the manifest.

    Refuses a missing artifact or manifest, a manifest for another file, and
    an artifact whose size or sha256 differs from the recorded ones.
    """
    if not artifact.is_file():
        raise EngineError(f"{artifact} does not exist: build it with `jetson-rt build-engine`")
    manifest = load_manifest(artifact)
    if manifest is None:
        raise EngineError(
            f"{artifact} has no manifest ({manifest_path(artifact).name}): rebuild it with "
            "`jetson-rt build-engine`, which writes one, or load it with verification off"
        )
    _check_field_types(manifest, manifest_path(artifact))
    if manifest.artifact != artifact.name:
        raise EngineError(
            f"manifest {manifest_path(artifact)} describes {manifest.artifact!r}, not "
            f"{artifact.name!r}: the files were renamed or mixed up; rebuild the engine"
        )
    size = artifact.stat().st_size
    if size != manifest.artifact_bytes:
        raise EngineError(
            f"{artifact} is {size} bytes but its manifest records {manifest.artifact_bytes}: "
            "the file is truncated or was replaced; rebuild or copy it again"
        )
    digest = file_sha256(artifact)
    if digest != manifest.artifact_sha256:
        raise EngineError(
            f"{artifact} sha256 {digest[:16]}... differs from its manifest's "
            f"{manifest.artifact_sha256[:16]}...: the file is corrupt or was replaced; "
            "rebuild or copy it again"
        )
    return manifest


def source_path(manifest: Manifest, artifact: Path) -> Path:
    """The source model a manifest names; a relative name is taken beside the artifact."""
    source = Path(manifest.source)
    return source if source.is_absolute() else artifact.parent / source


def verify_source(manifest: Manifest, artifact: Path) -> None:
    """Refuse ``artifact`` when the source model it was built from is gone or changed.

    A model edited after the build would otherwise be served by an engine that no
    longer matches it.
    """
    source = source_path(manifest, artifact)
    if not source.is_file():
        raise EngineError(
            f"{artifact.name} was built from {source}, which does not exist: keep the "
            "source model beside the engine, or rebuild the engine"
        )
    digest = file_sha256(source)
    if digest != manifest.source_sha256:
        raise EngineError(
            f"{source} changed after {artifact.name} was built (sha256 {digest[:16]}..., "
            f"the manifest records {manifest.source_sha256[:16]}...): rebuild the engine "
            "with `jetson-rt build-engine`"
        )


def verify_engine(artifact: Path) -> Manifest:
    """:func:`verify_artifact`, then :func:`verify_source`: what a runner loads is checked."""
    manifest = verify_artifact(artifact)
    verify_source(manifest, artifact)
    return manifest


def _differences(label: str, recorded: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    reasons = []
    for key in sorted(set(recorded) | set(wanted)):
        old, new = recorded.get(key), wanted.get(key)
        if old != new:
            reasons.append(f"{label} {key}: {old!r} -> {new!r}")
    return reasons


def rebuild_reasons(
    artifact: Path,
    *,
    backend: str,
    source_sha256: str,
    build_flags: Mapping[str, Any],
    platform: Mapping[str, JsonScalar],
) -> list[str]:
    """Why ``artifact`` must be (re)built; empty when it is up to date and intact.

    Build flags and platform fields are compared after a JSON round trip, so
    tuples and lists compare equal as they would once stored.
    """
    if not artifact.is_file():
        return [f"{artifact.name} does not exist"]
    try:
        manifest = verify_artifact(artifact)
    except EngineError as exc:
        return [str(exc)]
    reasons: list[str] = []
    if manifest.backend != backend:
        reasons.append(f"backend: {manifest.backend!r} -> {backend!r}")
    if manifest.source_sha256 != source_sha256:
        reasons.append("the ONNX model changed (sha256 differs)")
    normal_flags = json.loads(json.dumps(dict(build_flags)))
    normal_platform = json.loads(json.dumps(dict(platform)))
    reasons += _differences("flag", manifest.build_flags, normal_flags)
    reasons += _differences("platform", manifest.platform, normal_platform)
    for side_file in manifest.extras.values():
        if not (artifact.parent / side_file).is_file():
            reasons.append(f"side file {side_file} is missing")
    return reasons
