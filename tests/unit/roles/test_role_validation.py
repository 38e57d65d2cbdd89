"""The checks the roles' validate.yml files rely on: the jetson_rt.fleet.cpulist_problem
filter (every CPU list variable) and rt_kernel's repository check (files/repo_check.py),
run here against a real apt repository layout on disk (tests/kernel_repo.py)."""

from __future__ import annotations

import gzip
import importlib.util
import json
import lzma
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from tests import kernel_repo

ROOT = Path(__file__).resolve().parents[3]
REPO_CHECK = ROOT / "roles" / "rt_kernel" / "files" / "repo_check.py"
if str(ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(ROOT / "collections"))

from ansible_collections.jetson_rt.fleet.plugins.filter.cpulist_check import (  # noqa: E402
    FilterModule,
    cpulist_problem,
)


def _load_repo_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("repo_check", REPO_CHECK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


repo_check = _load_repo_check()


@pytest.mark.parametrize(
    ("value", "ncpus"),
    [("4-5", 6), ("", 6), ("1,3-4", "6"), (" 4-5\n", None), ([1, "4-5"], 6), (5, 6)],
)
def test_cpulist_problem_accepts(value: object, ncpus: object) -> None:
    assert cpulist_problem(value, ncpus) == ""


@pytest.mark.parametrize(
    ("value", "ncpus", "fragment"),
    [
        ("4-", 6, "open range"),
        ("5-4", 6, "reversed range"),
        ("4,,5", 6, "empty part"),
        ("0-3:2/4", 6, "stride syntax"),
        ("four", 6, "not a CPU number"),
        ("-1", 6, "negative"),
        ("4-9", 6, "CPU 6-9 outside 0-5"),
        ("99999", None, "out of range"),
        (True, 6, "boolean"),
        ({"cpus": 4}, 6, "expected a string"),
        ("4-5", "six", "number of CPUs 'six' is not an integer"),
        ("4-5", True, "number of CPUs True"),
        ("4-5", 0, "expected an integer from 1"),
    ],
)
def test_cpulist_problem_names_the_value(value: object, ncpus: object, fragment: str) -> None:
    problem = cpulist_problem(value, ncpus)
    assert fragment in problem
    assert "\n" not in problem


def test_cpulist_problem_is_registered() -> None:
    assert FilterModule().filters() == {"cpulist_problem": cpulist_problem}


def test_parse_index_collects_every_version() -> None:
    text = (
        "Package: a\nVersion: 1\nDescription: x\n multi-line\n\n"
        "Package: b\nVersion: 2\n\nPackage: a\nVersion: 3\n"
    )
    assert repo_check.parse_index(text) == {"a": ["1", "3"], "b": ["2"]}


def test_index_names_follow_the_release_file() -> None:
    release = "SHA256:\n 00 1 main/binary-arm64/Packages.xz\n 00 1 main/binary-amd64/Packages\n"
    assert repo_check.index_names(release, "main", "arm64") == ["main/binary-arm64/Packages.xz"]
    # no checksum lines: every name is tried, gzip first
    assert repo_check.index_names("Suite: r36.4\n", "main", "arm64")[0].endswith("Packages.gz")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = kernel_repo.build_repo(tmp_path_factory.mktemp("repo"))
    return root.as_uri()


def test_check_finds_the_release_and_packages(repo: str) -> None:
    wanted = [*kernel_repo.ORIN_PACKAGES]
    result = repo_check.check(repo, "r36.4", "main", wanted, "arm64")
    assert result["ok"] is True
    versions = result["versions"]
    assert isinstance(versions, dict)
    assert set(versions) == set(wanted)


def test_check_accepts_a_version_the_repository_has(repo: str) -> None:
    version = f"5.15.148-rt-tegra-{kernel_repo.L4T}-{kernel_repo.BUILD}"
    result = repo_check.check(repo, "r36.4", "main", [f"nvidia-l4t-rt-kernel={version}"], "arm64")
    assert result["ok"] is True


@pytest.mark.parametrize(
    ("release", "wanted", "arch", "expected"),
    [
        (
            "r36.9",
            ["nvidia-l4t-rt-kernel"],
            "arm64",
            ("release", "dists/r36.9/Release cannot be read"),
        ),
        ("r36.4", ["nvidia-l4t-rt-kernel-extra"], "arm64", ("package", "is not in")),
        ("r36.4", ["nvidia-l4t-rt-kernel=0.1"], "arm64", ("package", "0.1 is not in")),
        ("r36.4", ["nvidia-l4t-rt-kernel"], "riscv64", ("release", "no package index")),
    ],
)
def test_check_refuses(
    repo: str, release: str, wanted: list[str], arch: str, expected: tuple[str, str]
) -> None:
    field, fragment = expected
    result = repo_check.check(repo, release, "main", wanted, arch)
    assert result["ok"] is False
    assert result["field"] == field
    assert fragment in str(result["problem"])


def test_check_reads_compressed_indexes(tmp_path: Path) -> None:
    dist = tmp_path / "dists" / "r1"
    binary = dist / "main" / "binary-arm64"
    binary.mkdir(parents=True)
    index = b"Package: p\nVersion: 7\n"
    (binary / "Packages.xz").write_bytes(lzma.compress(index))
    (dist / "Release").write_text("SHA256:\n 00 1 main/binary-arm64/Packages.xz\n")
    assert repo_check.check(tmp_path.as_uri(), "r1", "main", ["p=7"], "arm64")["ok"] is True
    (binary / "Packages.gz").write_bytes(gzip.compress(b"garbage"))
    (binary / "Packages.xz").write_bytes(b"not xz")
    (dist / "Release").write_text("Suite: r1\n")
    result = repo_check.check(tmp_path.as_uri(), "r1", "main", ["p"], "arm64")
    # Packages.gz holds no stanza with p; the check names the package, nothing raises
    assert result["ok"] is False
    assert result["field"] == "package"


def test_script_prints_one_json_object(repo: str) -> None:
    out = subprocess.run(
        [sys.executable, str(REPO_CHECK), repo, "r36.9", "main", "nvidia-l4t-rt-kernel"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(out)
    assert result["ok"] is False
    assert result["field"] == "release"
