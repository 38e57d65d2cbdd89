"""Write the demo model of the simulated fleet's inventory (``inventories/sim/models/``).

``site.yml`` on a simulated fleet deploys one real model, so that one command ends with
a runner service per host: ``det`` version 1, a Conv-BatchNorm-ReLU network on
[1, 3, 16, 16] (``tests/onnx_models.py``, seeded weights), and the reference pair its
rollout gate compares with (an input drawn with seed 7, and the output of the network's
numpy reference on it). The files are committed; ``inventories/sim/group_vars/sim.yml``
names them with their sha256. This tool regenerates them byte for byte, and
``tests/unit/test_sim_models.py`` checks the committed copies against it::

    .venv/bin/python tools/sim_models.py [--out inventories/sim/models]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.engine_rollout import write_versions  # noqa: E402

FILES = {"1": "det-1.onnx", "ref_input": "det-ref-input.npy", "ref_output": "det-ref-output.npy"}


def write(out: Path) -> dict[str, Path]:
    """The demo model and its reference pair in ``out``; returns name -> path."""
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    with tempfile.TemporaryDirectory() as tmp:
        generated = write_versions(Path(tmp))
        for key, name in FILES.items():
            shutil.copyfile(generated[key], out / name)
            written[name] = out / name
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "inventories" / "sim" / "models")
    args = parser.parse_args()
    for path in write(args.out).values():
        print(path)


if __name__ == "__main__":
    main()
