"""Files for the runner's bad-input tables: a valid runner.yaml, then one thing broken.

:func:`good_doc` is a configuration that ``check-config`` accepts and ``run`` starts
(a built ONNX Runtime artifact with its manifest and source model, in the case's own
folder). Each setup helper writes it into the case folder and breaks one thing: the
YAML text, a value, the artifact, its manifest or its source model.
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

Setup = Callable[[Path], None]
Doc = dict[str, Any]

MODEL = "model.onnx"
ARTIFACT = "model.ort.onnx"
MANIFEST = ARTIFACT + ".manifest.json"
CONFIG = "runner.yaml"


@functools.cache
def _template() -> Path:
    """A folder with the generated MLP and its ONNX Runtime build, made once per session."""
    from jetson_rt.engine.build import build
    from jetson_rt.engine.options import BuildOptions
    from onnx_models import write_mlp

    folder = Path(tempfile.mkdtemp(prefix="jetson-rt-badinput-"))
    write_mlp(folder, MODEL)
    build(
        BuildOptions(
            model=folder / MODEL, output=folder / ARTIFACT, backend="onnxruntime", precision="fp32"
        )
    )
    return folder


def copy_model(folder: Path) -> None:
    """The model, its artifact and a manifest naming this folder's source model."""
    template = _template()
    for name in (MODEL, ARTIFACT):
        shutil.copyfile(template / name, folder / name)
    manifest = json.loads((template / MANIFEST).read_text(encoding="utf-8"))
    manifest["source"] = str(folder / MODEL)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def good_doc(folder: Path) -> Doc:
    return {
        "schema_version": 1,
        "models": {"mlp": {"backend": "onnxruntime", "path": ARTIFACT}},
        "tasks": [{"name": "classify", "tiers": ["mlp"], "period_ms": 5, "deadline_ms": 50}],
        "warmup": {"min_iterations": 2, "max_iterations": 10, "window": 2, "max_cv": 5.0},
        "rt": {"priority": 0, "cpus": "all", "mlockall": False},
        "watchdog": {"timeout_ms": 2000},
        "thermal": {"enabled": False},
        "stats": {"path": str(folder / "stats.json"), "interval_s": 0.5},
    }


def write_doc(folder: Path, doc: Doc) -> None:
    copy_model(folder)
    (folder / CONFIG).write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def doc(change: Callable[[Doc], object]) -> Setup:
    """The good configuration with ``change(doc)`` applied."""

    def setup(folder: Path) -> None:
        data = good_doc(folder)
        change(data)
        write_doc(folder, data)

    return setup


def model(**values: Any) -> Setup:
    """The good configuration with ``models.mlp`` keys set (None removes one)."""

    def change(data: Doc) -> None:
        entry = data["models"]["mlp"]
        for key, value in values.items():
            if value is None:
                entry.pop(key, None)
            else:
                entry[key] = value

    return doc(change)


def options(**values: Any) -> Setup:
    return doc(lambda data: data["models"]["mlp"].__setitem__("options", values))


def task(**values: Any) -> Setup:
    return doc(lambda data: data["tasks"][0].update(values))


def section(name: str, **values: Any) -> Setup:
    return doc(lambda data: data.setdefault(name, {}).update(values))


def text(body: str) -> Setup:
    """``runner.yaml`` is ``body``, beside a good model (``{dir}`` becomes the folder)."""

    def setup(folder: Path) -> None:
        copy_model(folder)
        (folder / CONFIG).write_text(body.replace("{dir}", str(folder)), encoding="utf-8")

    return setup


def raw(data: bytes) -> Setup:
    def setup(folder: Path) -> None:
        copy_model(folder)
        (folder / CONFIG).write_bytes(data)

    return setup


GOOD_TEXT = """\
schema_version: 1
models:
  mlp: {backend: onnxruntime, path: model.ort.onnx}
tasks:
  - {name: classify, tiers: [mlp], period_ms: 5, deadline_ms: 50}
warmup: {min_iterations: 2, max_iterations: 10, window: 2, max_cv: 5.0}
rt: {priority: 0, cpus: all, mlockall: false}
thermal: {enabled: false}
stats: {path: "{dir}/stats.json"}
"""


def good_text_with(replace: str, by: str) -> Setup:
    assert replace in GOOD_TEXT, replace
    return text(GOOD_TEXT.replace(replace, by))


def artifact(change: Callable[[Path], object]) -> Setup:
    """The good configuration; then ``change(folder)`` breaks the artifact's files."""

    def setup(folder: Path) -> None:
        write_doc(folder, good_doc(folder))
        change(folder)

    return setup


def flip_byte(path: Path, offset: int = -1) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def edit_manifest(**values: Any) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        path = folder / MANIFEST
        manifest = json.loads(path.read_text(encoding="utf-8"))
        manifest.update(values)
        path.write_text(json.dumps(manifest), encoding="utf-8")

    return change


def fifo(folder: Path) -> None:
    """``runner.yaml`` is a named pipe nobody writes to: reading it would block forever."""
    import os

    copy_model(folder)
    os.mkfifo(folder / CONFIG)


BILLION_LAUGHS = (
    "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(9)
    )
    + "schema_version: 1\n"
)
