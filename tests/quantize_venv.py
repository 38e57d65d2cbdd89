"""The cached venv with NVIDIA ModelOpt where `jetson-rt quantize` runs in tests and benchmarks.

``nvidia-modelopt[onnx]`` is about 6.5 GB installed (``modelopt.onnx.quantization``
imports PyTorch, which pulls CUDA libraries), too much for the project's own
venv: it lives in ``.cache/quantize-venv`` (``$JETSON_RT_QUANTIZE_VENV``),
created on first use with the ``quantize`` extra's pin and reused afterwards.
jetson-rt itself runs there from this checkout (``PYTHONPATH=runtime``).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELOPT = "nvidia-modelopt[onnx]>=0.47,<0.48"


def venv_dir() -> Path:
    configured = os.environ.get("JETSON_RT_QUANTIZE_VENV")
    return Path(configured) if configured else REPO / ".cache" / "quantize-venv"


def ensure() -> Path:
    """The venv's python, after creating the venv if needed (minutes, once)."""
    root = venv_dir()
    python = root / "bin" / "python"
    marker = root / ".modelopt-installed"
    root.parent.mkdir(parents=True, exist_ok=True)
    with (root.parent / ".quantize-venv.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.is_file():
            subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
            subprocess.run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--disable-pip-version-check",
                    MODELOPT,
                ],
                check=True,
                timeout=3600,
            )
            marker.write_text(MODELOPT + "\n")
    return python


def run_quantize(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """``jetson-rt quantize ARGS`` in the ModelOpt venv, with this checkout's jetson_rt."""
    python = ensure()
    env = {**os.environ, "PYTHONPATH": str(REPO / "runtime")}
    return subprocess.run(
        [str(python), "-m", "jetson_rt.cli", "quantize", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
