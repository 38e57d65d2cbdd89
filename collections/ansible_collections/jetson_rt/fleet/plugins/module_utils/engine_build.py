# Copyright: jetson-rt maintainers
# Apache-2.0 (see galaxy.yml)
"""Command lines and result parsing for jetson_rt.fleet.engine_build.

The module does not import jetson_rt: it runs on the target's system Python,
while jetson-rt lives in its own venv there. Everything it needs from the
runtime goes through ``jetson-rt build-engine --if-changed --json`` (the build)
and a few lines of the venv's Python (check mode: would a build happen?).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# Runs in the target's jetson-rt venv in check mode: the decision
# ``build-engine --if-changed`` would take, without building anything.
CHECK_SNIPPET = """
import argparse, json, sys
from jetson_rt.engine import build as b
from jetson_rt.atomic import sha256_file
from jetson_rt.engine.cli import options_from_args, register
from jetson_rt.engine.manifest import rebuild_reasons
from jetson_rt.errors import JetsonRtError
parser = argparse.ArgumentParser()
register(parser.add_subparsers())
args = parser.parse_args(["build-engine", *sys.argv[1:]])
try:
    o = options_from_args(args)
    o.validate()
    if not o.model.is_file():
        reasons = [f"{o.model} does not exist yet"]
    else:
        facts = b.platform_fields(o.backend, "/", o)
        reasons = rebuild_reasons(
            o.output,
            backend=o.backend,
            source_sha256=sha256_file(o.model),
            build_flags=o.build_flags(b.calibration_fingerprint(o)),
            platform={k: v for k, v in facts.items() if k not in b.RECORDED_ONLY},
        )
except JetsonRtError as exc:
    reasons = [f"the build would fail: {exc}"]
print(json.dumps({"changed": bool(reasons), "reasons": reasons}))
"""


# The runtime's fingerprint command (jetson_rt.engine.fingerprint): --print,
# --write, --import DIR, --merge-timing-caches OUT SRC...; JSON on stdout.
FINGERPRINT_MODULE = "jetson_rt.engine.fingerprint"


def fingerprint_cmd(python: Path, action: list[str], args: list[str]) -> list[str]:
    """The command line of one fingerprint action with ``build-engine``'s arguments."""
    return [str(python), "-m", FINGERPRINT_MODULE, *action, *args]


def parse_json_output(what: str, rc: int, stdout: str, stderr: str) -> dict[str, Any]:
    """The JSON object a runtime command printed, or :class:`BuildError` saying why."""
    if rc != 0:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        raise BuildError(f"{what} failed (exit {rc}): {lines[-1] if lines else 'no message'}")
    try:
        result = json.loads(stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError) as exc:
        raise BuildError(f"{what} printed no JSON ({exc}): {stdout.strip()[-300:]!r}") from exc
    if not isinstance(result, dict):
        raise BuildError(f"{what} printed unexpected JSON: {result!r}")
    return result


def cached_files(source: str, artifact_name: str) -> bool:
    """Whether ``source`` holds a copied engine (its fingerprint file is copied last)."""
    return Path(source, artifact_name + ".fingerprint.json").is_file()


class BuildError(Exception):
    """``jetson-rt build-engine`` failed; the message says why and what was left alone."""


def format_shapes(shapes: Mapping[str, Sequence[int]] | None) -> str:
    """``{"input": [1, 3, 224, 224]}`` to trtexec's ``input:1x3x224x224``."""
    return ",".join(
        f"{name}:{'x'.join(str(int(dim)) for dim in dims)}"
        for name, dims in sorted((shapes or {}).items())
    )


def build_args(params: Mapping[str, Any]) -> list[str]:
    """The ``build-engine`` arguments (after the sub-command) for the module's parameters."""
    args = [str(params["model"]), "--output", str(params["output"]), "--backend"]
    args.append(params["backend"])
    if params.get("precision"):
        args += ["--precision", params["precision"]]
    for option, key in (
        ("--shapes", "shapes"),
        ("--min-shapes", "min_shapes"),
        ("--opt-shapes", "opt_shapes"),
        ("--max-shapes", "max_shapes"),
    ):
        text = format_shapes(params.get(key))
        if text:
            args += [option, text]
    if params["backend"] == "tensorrt":
        if params.get("workspace_mib") is not None:
            args += ["--workspace", str(params["workspace_mib"])]
        if params.get("builder_optimization_level") is not None:
            args += ["--builder-optimization-level", str(params["builder_optimization_level"])]
        if params.get("dla_core") is not None:
            args += ["--dla-core", str(params["dla_core"])]
            if params.get("allow_gpu_fallback"):
                args.append("--allow-gpu-fallback")
        for option, key in (
            ("--calib-dir", "calib_dir"),
            ("--calib-cache", "calib_cache"),
            ("--timing-cache", "timing_cache"),
        ):
            if params.get(key):
                args += [option, str(params[key])]
    elif params.get("ort_optimization"):
        args += ["--ort-optimization", params["ort_optimization"]]
    args += [str(arg) for arg in params.get("extra_args") or []]
    return args


def venv_python(jetson_rt: str) -> Path:
    """The interpreter of the venv a ``jetson-rt`` console script belongs to."""
    return Path(jetson_rt).parent / "python"


def parse_build_output(rc: int, stdout: str, stderr: str, output: str) -> dict[str, Any]:
    """The JSON ``build-engine --json`` printed, or :class:`BuildError` saying why."""
    if rc != 0:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        why = " ".join(lines[-3:]) if lines else f"exit status {rc}, no message"
        raise BuildError(
            f"jetson-rt build-engine failed (exit {rc}): {why}. Nothing was switched or "
            f"restarted: {output} and its manifest are as they were (writes are atomic), and "
            "the running engine and service are untouched."
        )
    try:
        result = json.loads(stdout)
    except json.JSONDecodeError as exc:
        raise BuildError(
            f"jetson-rt build-engine printed no JSON ({exc}): {stdout.strip()[-300:]!r}"
        ) from exc
    if not isinstance(result, dict) or "changed" not in result:
        raise BuildError(f"jetson-rt build-engine printed unexpected JSON: {result!r}")
    return result


def parse_check_output(rc: int, stdout: str, stderr: str) -> dict[str, Any]:
    """The check-mode snippet's verdict; an unusable venv means a build would happen."""
    if rc == 0:
        try:
            verdict = json.loads(stdout.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError):
            verdict = None
        if isinstance(verdict, dict) and "changed" in verdict:
            return verdict
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return {
        "changed": True,
        "reasons": [f"cannot ask jetson-rt ({lines[-1] if lines else f'exit {rc}'})"],
    }


def read_manifest(artifact: str) -> dict[str, Any]:
    """The manifest beside ``artifact`` (``{}`` when there is none or it is unreadable)."""
    path = Path(artifact + ".manifest.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def manifest_summary(manifest: Mapping[str, Any]) -> str:
    """A few stable lines of a manifest, for --diff."""
    if not manifest:
        return "(no artifact)\n"
    keys = ("artifact", "artifact_sha256", "source_sha256", "backend", "build_flags", "platform")
    return "".join(f"{key}: {json.dumps(manifest.get(key), sort_keys=True)}\n" for key in keys)
