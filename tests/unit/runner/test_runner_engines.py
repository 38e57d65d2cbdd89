"""The runner loads a built model only when its manifest, its sha256 and its source
model's sha256 all match; ``verify: false`` is the explicit, logged way round it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from tests.badinput import runner_files as rf

from jetson_rt.backends.base import Backend
from jetson_rt.errors import EngineError
from jetson_rt.runner.config import ModelConfig, parse_config
from jetson_rt.runner.service import Runner, default_backend_factory


class CountingFactory:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, model: ModelConfig) -> Backend:
        self.calls += 1
        return default_backend_factory(model)


def runner_for(folder: Path, factory: CountingFactory, **model: object) -> Runner:
    doc = rf.good_doc(folder)
    doc["models"]["mlp"].update(model)
    rf.write_doc(folder, doc)
    return Runner(parse_config(doc, folder / rf.CONFIG), backend_factory=factory)


def test_a_built_model_with_a_matching_manifest_loads(tmp_path: Path) -> None:
    factory = CountingFactory()
    runner = runner_for(tmp_path, factory)
    runner.prepare()
    runner.release()
    assert factory.calls == 1


def test_a_model_edited_after_the_build_is_refused_before_any_backend(tmp_path: Path) -> None:
    factory = CountingFactory()
    runner = runner_for(tmp_path, factory)
    rf.flip_byte(tmp_path / rf.MODEL)
    with pytest.raises(EngineError, match=r"model\.onnx changed after model\.ort\.onnx was built"):
        runner.prepare()
    assert factory.calls == 0  # even a program's own factory gets no unverified model


def test_every_refused_model_is_named_at_once(tmp_path: Path) -> None:
    doc = rf.good_doc(tmp_path)
    doc["models"]["copy"] = {"backend": "onnxruntime", "path": rf.ARTIFACT}
    rf.write_doc(tmp_path, doc)
    (tmp_path / rf.MANIFEST).unlink()
    runner = Runner(parse_config(doc, tmp_path / rf.CONFIG))
    with pytest.raises(EngineError) as info:
        runner.prepare()
    assert "models.mlp:" in str(info.value)
    assert "models.copy:" in str(info.value)


def test_verification_off_loads_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    factory = CountingFactory()
    runner = runner_for(tmp_path, factory, verify=False)
    (tmp_path / rf.MANIFEST).unlink()
    rf.flip_byte(tmp_path / rf.MODEL)
    with caplog.at_level(logging.WARNING, logger="jetson_rt"):
        runner.prepare()
    runner.release()
    assert factory.calls == 1
    assert "models.mlp.verify is false" in caplog.text
