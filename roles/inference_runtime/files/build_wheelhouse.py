#!/usr/bin/env python3
"""Build (once) the wheelhouse a target installs jetson-rt from, on the controller.

The jetson-rt wheel is built from the source tree and its dependencies are
downloaded as binary wheels for the *target's* platform and Python
(``pip download --platform ... --python-version ... --only-binary=:all:``), so
a target installs offline. The result is cached under ``--cache`` in a folder
named by a key over the sources and the target tuple: an unchanged tree and
target reuse it and nothing is built (``"changed": false`` on stdout).

Run by the role with the controller's Python; prints one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# What goes into the wheel (and so into the cache key).
SOURCES = ("pyproject.toml", "README.md", "runtime")
SKIP = ("__pycache__", ".egg-info", ".pyc", ".mypy_cache")
# Reproducible wheels: zip entries get this time instead of the files' mtimes.
SOURCE_DATE_EPOCH = "315532800"
COMPLETE = ".complete"
KEEP = 3


def source_files(root: Path) -> list[Path]:
    files: list[Path] = []
    for name in SOURCES:
        path = root / name
        if path.is_file():
            files.append(path)
            continue
        files += [
            p
            for p in sorted(path.rglob("*"))
            if p.is_file() and not any(part in str(p) for part in SKIP)
        ]
    return files


def cache_key(root: Path, target: dict[str, object]) -> str:
    digest = hashlib.sha256(json.dumps(target, sort_keys=True).encode())
    for path in source_files(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def platform_tags(machine: str, glibc: str) -> list[str]:
    """manylinux tags a target with this glibc accepts (2_17 up to its own)."""
    major, _, minor = glibc.partition(".")
    newest = int(minor) if major == "2" and minor.isdigit() else 17
    tags = [f"manylinux_2_{m}_{machine}" for m in range(newest, 16, -1)]
    return [*tags, f"manylinux2014_{machine}"]


def run(cmd: list[str], **kwargs: object) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-8:]
        raise SystemExit(
            json.dumps({"failed": True, "msg": f"{' '.join(cmd[:6])} failed: " + " ".join(tail)})
        )


def build(args: argparse.Namespace, dest: Path) -> None:
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    with tempfile.TemporaryDirectory(prefix=".wheelhouse-", dir=args.cache) as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in SOURCES:
            path = args.source / name
            if path.is_dir():
                shutil.copytree(path, src / name, ignore=shutil.ignore_patterns(*SKIP))
            else:
                shutil.copy2(path, src / name)
        out = Path(tmp) / "wheels"
        env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}
        run([*pip, "wheel", "-q", "--no-deps", "-w", str(out), f"{src}{os.sep}"], env=env)
        wheel = next(out.glob("jetson_rt-*.whl"))
        requirement = f"{wheel}[{','.join(args.extras)}]" if args.extras else str(wheel)
        platforms = [arg for tag in args.platform for arg in ("--platform", tag)]
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text("".join(f"{line}\n" for line in args.constraint))
        run(
            [
                *pip,
                "download",
                "-q",
                "-d",
                str(out),
                "--only-binary=:all:",
                "--implementation",
                "cp",
                "--python-version",
                args.python_version,
                *platforms,
                *(["-c", str(constraints)] if args.constraint else []),
                requirement,
                # the target's venv is created without pip (no python3-venv needed);
                # pip runs from its wheel to install the rest
                "pip",
            ]
        )
        sums = "".join(
            f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n"
            for p in sorted(out.iterdir())
        )
        (out / "SHA256SUMS").write_text(sums)
        (out / COMPLETE).write_text(wheel.name + "\n")
        try:
            out.rename(dest)
        except OSError:
            # another run built the same wheelhouse meanwhile: keep theirs
            if not (dest / COMPLETE).is_file():
                raise


def prune(cache: Path, prefix: str, keep: Path) -> list[str]:
    """Older wheelhouses of the same target, beyond the newest KEEP."""
    same = sorted(
        (d for d in cache.glob(f"{prefix}-*") if d.is_dir() and d != keep),
        key=lambda d: d.stat().st_mtime,
        reverse=True,
    )
    removed = []
    for old in same[KEEP - 1 :]:
        shutil.rmtree(old, ignore_errors=True)
        removed.append(old.name)
    return removed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, required=True, help="the jetson-rt source tree")
    parser.add_argument("--cache", type=Path, required=True, help="wheelhouse cache folder")
    parser.add_argument("--python-version", required=True, help="target Python, e.g. 3.10")
    parser.add_argument("--machine", required=True, help="target machine, e.g. aarch64")
    parser.add_argument("--glibc", required=True, help="target glibc, e.g. 2.35")
    parser.add_argument("--extras", default="", help="comma-separated jetson-rt extras")
    parser.add_argument("--platform", action="append", default=[], help="override the tags")
    parser.add_argument(
        "--constraint",
        action="append",
        default=[],
        help="a pip constraint on the dependencies, e.g. 'cuda-python<13' (repeatable)",
    )
    args = parser.parse_args()
    args.extras = [e for e in args.extras.split(",") if e]
    args.platform = args.platform or platform_tags(args.machine, args.glibc)
    args.source = args.source.resolve()
    args.cache.mkdir(parents=True, exist_ok=True)
    target = {
        "python": args.python_version,
        "platforms": args.platform,
        "extras": args.extras,
        "constraints": sorted(args.constraint),
    }
    prefix = f"py{args.python_version}-{args.machine}"
    dest = args.cache / f"{prefix}-{cache_key(args.source, target)[:16]}"
    changed = not (dest / COMPLETE).is_file()
    if changed:
        shutil.rmtree(dest, ignore_errors=True)
        build(args, dest)
    removed = prune(args.cache, prefix, dest)
    files = sorted(p.name for p in dest.iterdir() if p.name != COMPLETE)
    print(
        json.dumps(
            {
                "changed": changed,
                "path": str(dest),
                "key": dest.name,
                "wheel": (dest / COMPLETE).read_text().strip(),
                "files": files,
                "pruned": removed,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
