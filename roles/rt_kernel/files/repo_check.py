#!/usr/bin/env python3
# Copyright: jetson-rt maintainers
# Apache-2.0
"""Does an apt repository hold a release and the packages asked for? Changes nothing.

    repo_check.py URL RELEASE COMPONENT PACKAGE[=VERSION]...

Reads URL/dists/RELEASE/Release, then COMPONENT's package index for this machine's
architecture (Packages.gz, Packages or Packages.xz, as the Release file lists them)
and prints one JSON object: {"ok": bool, "field": ..., "problem": ...,
"arch": ..., "versions": {package: [versions]}}. rt_kernel runs it on each host
before it adds the apt source, so that a release or a package version that the
repository does not have is refused before the first change. Exit status 0 unless
the arguments are wrong; the verdict is in the JSON.
"""

from __future__ import annotations

import gzip
import json
import lzma
import subprocess
import sys
import urllib.error
import urllib.request

TIMEOUT_S = 30
MAX_INDEX_BYTES = 256 * 1024 * 1024


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:  # noqa: S310 (http, https, file)
        data: bytes = response.read(MAX_INDEX_BYTES + 1)
    if len(data) > MAX_INDEX_BYTES:
        raise ValueError(f"{url} is larger than {MAX_INDEX_BYTES} bytes")
    return data


def parse_index(text: str) -> dict[str, list[str]]:
    """Package name -> versions, from a Packages index (RFC 822 stanzas)."""
    versions: dict[str, list[str]] = {}
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") or ":" not in line:
                continue
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if "package" in fields:
            versions.setdefault(fields["package"], []).append(fields.get("version", ""))
    return versions


def index_names(release_text: str, component: str, arch: str) -> list[str]:
    """The index files of COMPONENT/binary-ARCH that the Release file lists, best first."""
    listed = {
        line.split()[-1]
        for line in release_text.splitlines()
        if line.startswith(" ") and len(line.split()) == 3
    }
    base = f"{component}/binary-{arch}/Packages"
    names = [base + suffix for suffix in (".gz", "", ".xz") if base + suffix in listed]
    # a Release file without checksums (some mirrors): try them all
    return names or [base + suffix for suffix in (".gz", "", ".xz")]


def decode(name: str, data: bytes) -> str:
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    elif name.endswith(".xz"):
        data = lzma.decompress(data)
    return data.decode("utf-8", errors="replace")


def check(
    url: str, release: str, component: str, wanted: list[str], arch: str
) -> dict[str, object]:
    result: dict[str, object] = {"ok": False, "arch": arch, "versions": {}}
    dist = f"{url.rstrip('/')}/dists/{release}"
    try:
        release_text = fetch(f"{dist}/Release").decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        result.update(field="release", problem=f"{dist}/Release cannot be read ({exc})")
        return result
    index: dict[str, list[str]] | None = None
    problems = []
    for name in index_names(release_text, component, arch):
        try:
            index = parse_index(decode(name, fetch(f"{dist}/{name}")))
            break
        except (urllib.error.URLError, OSError, ValueError, EOFError, lzma.LZMAError) as exc:
            problems.append(f"{dist}/{name}: {exc}")
    if index is None:
        result.update(
            field="release",
            problem=f"no package index for {component}/binary-{arch} ({'; '.join(problems)})",
        )
        return result
    versions: dict[str, list[str]] = {}
    for spec in wanted:
        package, _, version = spec.partition("=")
        available = index.get(package)
        if available is None:
            result.update(
                field="package",
                value=spec,
                problem=f"{package} is not in {dist} ({component}, {arch})",
            )
            return result
        if version and version not in available:
            result.update(
                field="package",
                value=spec,
                problem=f"{package} {version} is not in {dist}; it has {', '.join(available)}",
            )
            return result
        versions[package] = available
    result.update(ok=True, versions=versions)
    return result


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    url, release, component, *wanted = argv
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    print(json.dumps(check(url, release, component, wanted, arch)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
