"""Every module of the jetson_rt.fleet collection documents itself in a form ansible-doc
reads (a YAML error there hides the module's whole documentation from users)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
MODULES = REPO / "collections/ansible_collections/jetson_rt/fleet/plugins/modules"
NAMES = sorted(p.stem for p in MODULES.glob("*.py") if p.stem != "__init__")


def test_ansible_doc_reads_every_module() -> None:
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections")}
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-doc")),
            "--json",
            "-t",
            "module",
            *(f"jetson_rt.fleet.{name}" for name in NAMES),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    docs = json.loads(done.stdout)
    assert sorted(docs) == [f"jetson_rt.fleet.{name}" for name in NAMES]
    for name, entry in docs.items():
        doc = entry["doc"]
        assert doc["short_description"], name
        assert doc["description"], name
        for option, spec in (doc.get("options") or {}).items():
            assert spec.get("description"), f"{name}: option {option} has no description"
        # EXAMPLES and RETURN are YAML too
        assert yaml.safe_load(entry["examples"]), name
        assert entry["return"] is not None, name
