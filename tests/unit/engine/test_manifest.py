"""The manifest, its verification and atomic writes (no model needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jetson_rt.atomic import atomic_write_bytes, atomic_writer, sha256_file
from jetson_rt.engine.manifest import (
    Manifest,
    load_manifest,
    manifest_path,
    rebuild_reasons,
    verify_artifact,
)
from jetson_rt.errors import EngineError


def write_artifact(folder: Path, data: bytes = b"engine bytes") -> tuple[Path, Manifest]:
    artifact = folder / "model.engine"
    artifact.write_bytes(data)
    manifest = Manifest(
        backend="tensorrt",
        source="model.onnx",
        source_sha256="a" * 64,
        artifact=artifact.name,
        artifact_sha256=sha256_file(artifact),
        artifact_bytes=len(data),
        build_flags={"precision": "fp16", "opt_shapes": "input:1x3x8x8"},
        platform={"tensorrt": "10.3.0", "l4t_release": "36.4.3"},
        build_seconds=1.5,
        built_at="2026-01-01T00:00:00+00:00",
    )
    manifest.write(artifact)
    return artifact, manifest


def test_round_trip_and_verify(tmp_path: Path) -> None:
    artifact, manifest = write_artifact(tmp_path)
    assert manifest_path(artifact).name == "model.engine.manifest.json"
    assert load_manifest(artifact) == manifest
    assert verify_artifact(artifact) == manifest


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", r"not valid JSON"),
        ("[1, 2]", r"not a JSON object"),
        ('{"schema": 99}', r"has schema 99"),
        ('{"schema": 1, "backend": "tensorrt"}', r"does not have the expected fields"),
    ],
)
def test_unreadable_manifest_is_refused(tmp_path: Path, text: str, message: str) -> None:
    artifact, _ = write_artifact(tmp_path)
    manifest_path(artifact).write_text(text)
    with pytest.raises(EngineError, match=message):
        verify_artifact(artifact)
    # --if-changed treats it as a reason to rebuild, not a crash.
    reasons = rebuild_reasons(
        artifact, backend="tensorrt", source_sha256="a" * 64, build_flags={}, platform={}
    )
    assert reasons
    assert "rebuild" in reasons[0]


def test_manifest_of_another_file_is_refused(tmp_path: Path) -> None:
    artifact, _ = write_artifact(tmp_path)
    other = tmp_path / "other.engine"
    other.write_bytes(artifact.read_bytes())
    manifest_path(other).write_text(manifest_path(artifact).read_text())
    with pytest.raises(EngineError, match=r"describes 'model\.engine', not 'other\.engine'"):
        verify_artifact(other)


def test_same_size_corruption_is_caught_by_sha256(tmp_path: Path) -> None:
    artifact, _ = write_artifact(tmp_path, b"0123456789")
    artifact.write_bytes(b"0123456788")
    with pytest.raises(EngineError, match=r"sha256 .* differs"):
        verify_artifact(artifact)


def test_rebuild_reasons_name_each_difference(tmp_path: Path) -> None:
    artifact, manifest = write_artifact(tmp_path)
    same = rebuild_reasons(
        artifact,
        backend="tensorrt",
        source_sha256=manifest.source_sha256,
        build_flags=manifest.build_flags,
        platform=manifest.platform,
    )
    assert same == []
    reasons = rebuild_reasons(
        artifact,
        backend="tensorrt",
        source_sha256="b" * 64,
        build_flags={**manifest.build_flags, "precision": "int8"},
        platform={**manifest.platform, "l4t_release": "36.4.4"},
    )
    assert reasons == [
        "the ONNX model changed (sha256 differs)",
        "flag precision: 'fp16' -> 'int8'",
        "platform l4t_release: '36.4.3' -> '36.4.4'",
    ]
    absent = tmp_path / "absent.engine"
    assert rebuild_reasons(
        absent, backend="tensorrt", source_sha256="", build_flags={}, platform={}
    ) == ["absent.engine does not exist"]


def test_tuples_compare_equal_to_their_stored_lists(tmp_path: Path) -> None:
    artifact, manifest = write_artifact(tmp_path)
    data = json.loads(manifest_path(artifact).read_text())
    data["build_flags"]["dims"] = [1, 2]
    manifest_path(artifact).write_text(json.dumps(data))
    assert (
        rebuild_reasons(
            artifact,
            backend="tensorrt",
            source_sha256=manifest.source_sha256,
            build_flags={**manifest.build_flags, "dims": (1, 2)},
            platform=manifest.platform,
        )
        == []
    )


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "out" / "file.bin"
    atomic_write_bytes(target, b"first")
    with pytest.raises(RuntimeError, match="interrupted"), atomic_writer(target) as handle:
        handle.write(b"partial")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"first"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]  # no temp file left
    atomic_write_bytes(target, memoryview(b"second"))
    assert target.read_bytes() == b"second"
    assert (target.stat().st_mode & 0o777) == 0o644


def test_an_unchanged_artifact_is_hashed_once_per_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run` checks an engine three times at start (validator, loader, backend): one read."""
    import hashlib

    artifact, _ = write_artifact(tmp_path, b"x" * 4096)
    hashers: list[object] = []
    real = hashlib.sha256

    def counting(*args: bytes) -> object:
        hasher = real(*args)
        hashers.append(hasher)
        return hasher

    monkeypatch.setattr(hashlib, "sha256", counting)
    for _ in range(3):
        verify_artifact(artifact)
    assert len(hashers) == 1


def test_a_same_size_edit_in_place_after_a_check_is_still_caught(tmp_path: Path) -> None:
    artifact, _ = write_artifact(tmp_path, b"x" * 4096)
    verify_artifact(artifact)
    with artifact.open("r+b") as handle:  # same size, same inode, new bytes
        handle.seek(100)
        handle.write(b"y")
    with pytest.raises(EngineError, match="sha256"):
        verify_artifact(artifact)


def test_a_replaced_artifact_after_a_check_is_still_caught(tmp_path: Path) -> None:
    artifact, _ = write_artifact(tmp_path, b"x" * 4096)
    verify_artifact(artifact)
    atomic_write_bytes(artifact, b"z" * 4096)
    with pytest.raises(EngineError, match="sha256"):
        verify_artifact(artifact)
