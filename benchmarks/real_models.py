"""``jetson-rt bench`` against a plain ONNX Runtime loop, on the trained-model corpus.

For each model of ``tests/realmodels/corpus.py`` (downloaded once into the
model cache): ``build-engine --backend onnxruntime`` at the corpus shapes, then,
in one process on the built artifact, alternating blocks of

- bench: :func:`jetson_rt.runner.bench.bench_backend` on the ``onnxruntime``
  backend (what ``jetson-rt bench`` runs: IOBinding, preallocated arrays),
  its ``host_latency`` per inference;
- plain: ``InferenceSession.run(None, feeds)`` in a Python loop with the same
  ``SessionOptions`` (the backend's own :meth:`session_options`: one intra-op
  thread, sequential, no spinning), each call timed with ``perf_counter_ns``.

Short blocks of each alternate (``--block`` inferences, ``--rounds`` times)
so that clock and load drift hit both alike; the bench side calls
``bench_backend`` for one inference at a time, so that every sample is its
own ``host_latency``. p50 and p99 are over all samples of a side, and
bench/plain is the ratio (target <= 1.02: the bench adds nothing to what it
measures).

Before each plain inference the loop writes the same seeded synthetic inputs
that ``bench_backend`` writes (untimed on both sides).

    python benchmarks/real_models.py [--rounds 300] [--block 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from tests.realmodels.corpus import CORPUS, CorpusModel, fetch  # noqa: E402

from jetson_rt.backends.base import TensorSpec  # noqa: E402
from jetson_rt.backends.onnxruntime import OnnxRuntimeBackend  # noqa: E402
from jetson_rt.cli import main as jetson_rt  # noqa: E402
from jetson_rt.runner.bench import BenchSettings, bench_backend, describe  # noqa: E402
from jetson_rt.runner.sources import synthetic_array  # noqa: E402


def plain_block(
    session: Any, feeds: dict[str, np.ndarray], specs: list[TensorSpec], block: int
) -> np.ndarray:
    """``block`` timed ``session.run`` calls, each after the untimed input write
    ``bench_backend`` also makes (seeded synthetic data), so caches are alike."""
    samples = np.empty(block)
    clock = time.perf_counter_ns
    for index in range(block):
        rng = np.random.default_rng(0)
        for spec in specs:
            np.copyto(feeds[spec.name], synthetic_array(spec, rng))
        start = clock()
        session.run(None, feeds)
        samples[index] = (clock() - start) / 1e6
    return samples


def measure(model: CorpusModel, folder: Path, rounds: int, block: int) -> dict[str, Any]:
    import onnxruntime as ort  # type: ignore[import-untyped]

    original = fetch(model)
    artifact = folder / f"{model.name}.ort.onnx"
    argv = ["build-engine", str(original), "--backend", "onnxruntime", "-o", str(artifact)]
    if jetson_rt([*argv, "--shapes", model.shapes_arg()]) != 0:
        raise SystemExit(f"build-engine failed for {model.name}")
    backend = OnnxRuntimeBackend(artifact, input_shapes=model.shapes)
    backend.activate()
    session = ort.InferenceSession(
        str(artifact), sess_options=backend.session_options(), providers=["CPUExecutionProvider"]
    )
    single = BenchSettings(iterations=1, warmup=0)
    # Warm both up outside the timed blocks. bench_backend writes its seeded
    # synthetic inputs (the same every call): the plain loop gets a copy of them.
    bench_backend(backend, BenchSettings(iterations=max(block, 10), warmup=0))
    feeds = {name: array.copy() for name, array in backend.host_inputs().items()}
    specs = list(backend.inputs)
    plain_block(session, feeds, specs, max(block, 10))
    bench_samples: list[float] = []
    plain_samples: list[np.ndarray] = []
    try:
        for _ in range(rounds):
            for _ in range(block):
                host = bench_backend(backend, single)["latency_ms"]["host_latency"]
                bench_samples.append(host["median"])
            plain_samples.append(plain_block(session, feeds, specs, block))
    finally:
        backend.deactivate()
    bench_stats = describe(np.array(bench_samples))
    plain_stats = describe(np.concatenate(plain_samples))
    assert bench_stats is not None and plain_stats is not None
    row = {
        "model": model.name,
        "kind": model.kind,
        "shapes": model.shapes_arg(),
        "samples": len(bench_samples),
        "bench_p50_ms": bench_stats["median"],
        "plain_p50_ms": plain_stats["median"],
        "bench_p99_ms": bench_stats["p99"],
        "plain_p99_ms": plain_stats["p99"],
    }
    row["p50_ratio"] = round(row["bench_p50_ms"] / row["plain_p50_ms"], 3)
    row["p99_ratio"] = round(row["bench_p99_ms"] / row["plain_p99_ms"], 3)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | shapes | samples | bench p50 ms | plain p50 ms | p50 ratio | bench p99 ms "
        "| plain p99 ms | p99 ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | `{row['shapes']}` | {row['samples']} | {row['bench_p50_ms']:.3f} "
            f"| {row['plain_p50_ms']:.3f} | {row['p50_ratio']:.3f} "
            f"| {row['bench_p99_ms']:.3f} | {row['plain_p99_ms']:.3f} | {row['p99_ratio']:.3f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300, help="alternating block pairs")
    parser.add_argument("--block", type=int, default=1, help="inferences per block")
    parser.add_argument("--models", nargs="*", help="corpus names (default: all)")
    parser.add_argument("--json", type=Path, help="write the rows as JSON here")
    args = parser.parse_args()
    chosen = [m for m in CORPUS if not args.models or m.name in args.models]
    rows = []
    with tempfile.TemporaryDirectory(prefix="jetson-rt-real-models-") as tmp:
        for model in chosen:
            rows.append(measure(model, Path(tmp), args.rounds, args.block))
            print(f"{model.name}: done", file=sys.stderr, flush=True)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
