"""The runner's table of backend options stays in step with the backends themselves."""

from __future__ import annotations

import inspect

import pytest

from jetson_rt.backends import backend_class, backend_names
from jetson_rt.runner import config


@pytest.mark.parametrize("name", backend_names())
def test_every_backend_keyword_is_checked_or_set_elsewhere(name: str) -> None:
    accepted = {
        param.name
        for param in inspect.signature(backend_class(name).__init__).parameters.values()
        if param.kind is inspect.Parameter.KEYWORD_ONLY
    }
    table = set(config._BACKEND_OPTIONS[name])
    assert table | set(config._OPTIONS_ELSEWHERE) == accepted


def test_runner_yaml_options_reach_the_backend_as_typed_values(tmp_path: object) -> None:
    doc = {
        "schema_version": 1,
        "models": {
            "m": {
                "backend": "onnxruntime",
                "path": "m.onnx",
                "shapes": {"input": [2, 64]},
                "options": {"batch": 2, "intra_op_threads": 0, "allow_spinning": True},
            }
        },
        "tasks": [{"name": "t", "tiers": ["m"], "deadline_ms": 10}],
    }
    model = config.parse_config(doc).models["m"]
    assert model.options == {"batch": 2, "intra_op_threads": 0, "allow_spinning": True}
    assert model.verify is True
