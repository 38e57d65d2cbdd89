# Copyright: jetson-rt maintainers
# Apache-2.0 (see galaxy.yml)
"""Kernel artifacts: pack, verify and audit a built PREEMPT_RT kernel.

An artifact is a reproducible ``.tar.gz`` holding::

    manifest.json      L4T release, kernel release, config and input hashes, file sha256s
    SHA256SUMS         the same sha256s in ``sha256sum -c`` form (checked again on the target)
    Image              the kernel image
    initrd             optional
    config             the kernel .config it was built with
    modules/lib/modules/<release>/...   the module tree (INSTALL_MOD_PATH layout)
    dtbs/...           device trees (optional)

Pure Python 3.10 with no dependencies: the same code runs on a build host, on the
controller (the ``jetson_rt.fleet`` collection's module_utils is a link to this file, as
for :mod:`jetson_rt.platform`), in the simulated fleet and in unit tests.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import re
import struct
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

FORMAT = 1
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
REQUIRED_KEYS = ("format", "l4t_release", "kernel_release", "realtime", "config_sha256", "files")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class ArtifactError(Exception):
    """An artifact that must not be installed, or a build that must not be packed."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def valid_sha256(value: str | None) -> bool:
    return bool(value) and _SHA256_RE.match(str(value).lower()) is not None


# --- vermagic --------------------------------------------------------------------------


def _elf_section(data: bytes, name: bytes) -> bytes | None:
    """The contents of ELF section ``name`` (32 or 64 bit, either byte order)."""
    if data[:4] != b"\x7fELF" or len(data) < 64:
        return None
    is64 = data[4] == 2
    order = "<" if data[5] == 1 else ">"
    if is64:
        (shoff,) = struct.unpack_from(order + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x3A)
    else:
        (shoff,) = struct.unpack_from(order + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x2E)

    def header(index: int) -> tuple[int, int, int]:
        base = shoff + index * shentsize
        if is64:
            (sh_name,) = struct.unpack_from(order + "I", data, base)
            offset, size = struct.unpack_from(order + "QQ", data, base + 0x18)
        else:
            (sh_name,) = struct.unpack_from(order + "I", data, base)
            offset, size = struct.unpack_from(order + "II", data, base + 0x10)
        return sh_name, offset, size

    try:
        _type, str_off, str_size = header(shstrndx)
        names = data[str_off : str_off + str_size]
        for index in range(shnum):
            sh_name, offset, size = header(index)
            end = names.find(b"\0", sh_name)
            if names[sh_name:end] == name:
                return data[offset : offset + size]
    except struct.error:
        return None
    return None


def module_bytes(path: Path) -> bytes:
    """A kernel module's ELF bytes (plain, .xz or .gz)."""
    raw = path.read_bytes()
    if path.name.endswith(".ko.xz"):
        return lzma.decompress(raw)
    if path.name.endswith(".ko.gz"):
        return gzip.decompress(raw)
    if path.name.endswith(".ko.zst"):
        raise ArtifactError(
            f"{path}: zstd-compressed modules are not supported; build with "
            "CONFIG_MODULE_COMPRESS_NONE=y or _XZ=y"
        )
    return raw


def vermagic(data: bytes) -> str | None:
    """The ``vermagic=`` string of a module, from its .modinfo section."""
    section = _elf_section(data, b".modinfo")
    if section is None:
        # not a well-formed ELF: fall back to the first vermagic= string in the file
        section = data
    for item in section.split(b"\0"):
        if item.startswith(b"vermagic="):
            return item[len(b"vermagic=") :].decode("utf-8", "replace").strip()
    return None


def is_module(path: Path) -> bool:
    return path.is_file() and path.name.endswith((".ko", ".ko.xz", ".ko.gz", ".ko.zst"))


def audit_modules(root: Path, required: str = "preempt_rt") -> dict[str, Any]:
    """Every module under ``root`` with its vermagic; ``bad`` lists those without ``required``."""
    modules: dict[str, str | None] = {}
    for path in sorted(p for p in root.rglob("*") if is_module(p)):
        modules[str(path.relative_to(root))] = vermagic(module_bytes(path))
    bad = [name for name, magic in modules.items() if not magic or required not in magic.split()]
    return {"count": len(modules), "modules": modules, "bad": bad, "required": required}


# --- pack ------------------------------------------------------------------------------


def _walk(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink())


def _tar_info(name: str, size: int, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def build_manifest(
    members: dict[str, Path],
    *,
    l4t_release: str,
    kernel_release: str,
    config: Path,
    inputs_sha256: str = "",
    realtime: bool | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    config_text = config.read_text(errors="replace")
    rt = "CONFIG_PREEMPT_RT=y" in config_text.splitlines()
    files = {name: sha256_file(path) for name, path in sorted(members.items())}
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "l4t_release": l4t_release,
        "kernel_release": kernel_release,
        "realtime": rt if realtime is None else realtime,
        "config_sha256": sha256_file(config),
        "inputs_sha256": inputs_sha256,
        "image": "Image",
        "initrd": "initrd" if "initrd" in members else None,
        "modules": f"modules/lib/modules/{kernel_release}",
        "dtbs": sorted(n for n in members if n.startswith("dtbs/")),
        "files": files,
    }
    manifest.update(extra or {})
    return manifest


def collect_members(
    image: Path,
    config: Path,
    modules_root: Path | None = None,
    dtbs_root: Path | None = None,
    initrd: Path | None = None,
) -> dict[str, Path]:
    """Artifact member names to source files. ``modules_root`` is an INSTALL_MOD_PATH."""
    members: dict[str, Path] = {"Image": image, "config": config}
    if initrd is not None:
        members["initrd"] = initrd
    if modules_root is not None:
        for path in _walk(modules_root):
            if path.is_symlink():
                continue  # build/ and source/ point into the build tree
            members["modules/" + path.relative_to(modules_root).as_posix()] = path
    if dtbs_root is not None:
        for path in _walk(dtbs_root):
            if path.is_file() and not path.is_symlink():
                members["dtbs/" + path.relative_to(dtbs_root).as_posix()] = path
    return members


def pack(members: dict[str, Path], manifest: dict[str, Any], dest: Path) -> str:
    """Write a reproducible artifact (same inputs, same bytes); returns its sha256."""
    sums = "".join(f"{manifest['files'][name]}  {name}\n" for name in sorted(manifest["files"]))
    manifest_bytes = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    with (
        tmp.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name, data in ((MANIFEST, manifest_bytes), (SUMS, sums.encode())):
            tar.addfile(_tar_info(name, len(data)), io.BytesIO(data))
        for name in sorted(members):
            with members[name].open("rb") as handle:
                tar.addfile(_tar_info(name, members[name].stat().st_size), handle)
    tmp.replace(dest)
    return sha256_file(dest)


# --- verify ----------------------------------------------------------------------------


def _safe_name(name: str) -> bool:
    pure = PurePosixPath(name)
    return not pure.is_absolute() and ".." not in pure.parts and name not in ("", ".")


def _extract(artifact: Path, extract_to: Path) -> set[str]:
    """Unpack plain files with safe names only; returns the member names."""
    extract_to.mkdir(parents=True, exist_ok=True)
    with tarfile.open(artifact, "r:*") as tar:
        members = tar.getmembers()
        for member in members:
            if not member.isfile() or not _safe_name(member.name):
                raise ArtifactError(
                    f"{artifact}: member {member.name!r} is not a plain file with a relative name"
                )
        for member in members:
            target = extract_to / member.name
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            if source is None:
                raise ArtifactError(f"{artifact}: cannot read {member.name}")
            with target.open("wb") as handle:
                handle.write(source.read())
            target.chmod(member.mode & 0o755)
    return {m.name for m in members}


def _check_manifest(artifact: Path, extract_to: Path, names: set[str]) -> dict[str, Any]:
    if MANIFEST not in names:
        raise ArtifactError(f"{artifact}: no {MANIFEST}")
    try:
        manifest: dict[str, Any] = json.loads((extract_to / MANIFEST).read_text())
    except ValueError as exc:
        raise ArtifactError(f"{artifact}: {MANIFEST} is not JSON: {exc}") from exc
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise ArtifactError(f"{artifact}: {MANIFEST} lacks {', '.join(missing)}")
    if manifest["format"] != FORMAT:
        raise ArtifactError(f"{artifact}: manifest format {manifest['format']} (expected {FORMAT})")
    listed = set(manifest["files"])
    extra = sorted(names - listed - {MANIFEST, SUMS})
    if extra:
        raise ArtifactError(f"{artifact}: files not in the manifest: {', '.join(extra[:5])}")
    bad = [
        name
        for name, digest in sorted(manifest["files"].items())
        if name not in names or sha256_file(extract_to / name) != digest
    ]
    if bad:
        raise ArtifactError(
            f"{artifact}: {len(bad)} file(s) missing or with a sha256 other than the "
            f"manifest's: {', '.join(bad[:5])}"
        )
    if "Image" not in listed:
        raise ArtifactError(f"{artifact}: no kernel Image")
    return manifest


def verify(
    artifact: Path,
    sha256: str,
    extract_to: Path,
    *,
    l4t_release: str | None = None,
    require_realtime: bool = True,
) -> dict[str, Any]:
    """Check an artifact and unpack it; returns its manifest. Raises ArtifactError.

    Checks, in order: the artifact's own sha256, that every member is a plain file
    with a safe name, the manifest's keys, each listed file's sha256 and that no
    unlisted file is present, the realtime flag, and the L4T release when given.
    """
    if not artifact.is_file():
        raise ArtifactError(f"{artifact}: no such artifact")
    if not valid_sha256(sha256):
        raise ArtifactError(f"the expected sha256 {sha256!r} is not 64 hex digits")
    actual = sha256_file(artifact)
    if actual != sha256.lower():
        raise ArtifactError(
            f"{artifact}: sha256 {actual} does not match the expected {sha256.lower()}; "
            "refusing to install it (fetch it again, or fix rt_kernel_artifact_sha256)"
        )
    manifest = _check_manifest(artifact, extract_to, _extract(artifact, extract_to))
    if require_realtime and not manifest["realtime"]:
        raise ArtifactError(f"{artifact}: built without CONFIG_PREEMPT_RT=y")
    if l4t_release and manifest["l4t_release"] != l4t_release:
        raise ArtifactError(
            f"{artifact}: built for L4T {manifest['l4t_release']}, the host runs L4T "
            f"{l4t_release}: a kernel for another release may not boot (rebuild it for "
            f"{l4t_release}, or set rt_kernel_force=true)"
        )
    return manifest
