"""kernel artifacts: vermagic audit, reproducible packing, verification before install."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import tarfile
from pathlib import Path

import pytest
from ansible_collections.jetson_rt.fleet.plugins.module_utils.kernel_artifact import (
    ArtifactError,
    audit_modules,
    build_manifest,
    collect_members,
    pack,
    verify,
    vermagic,
)

RT_MAGIC = "5.15.148-rt-tegra SMP preempt_rt mod_unload aarch64"


def elf_module(magic: str, *, bits: int = 64, big: bool = False) -> bytes:
    """A minimal ELF relocatable with a .modinfo and a .shstrtab section."""
    order = ">" if big else "<"
    modinfo = f"license=GPL\0vermagic={magic}\0name=demo\0".encode()
    shstrtab = b"\0.modinfo\0.shstrtab\0"
    ehsize, shentsize = (64, 64) if bits == 64 else (52, 40)
    modinfo_off = ehsize
    shstr_off = modinfo_off + len(modinfo)
    shoff = shstr_off + len(shstrtab)
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 2 if big else 1, 1]) + b"\0" * 9
    if bits == 64:
        header = ident + struct.pack(
            order + "HHIQQQIHHHHHH", 1, 183, 1, 0, 0, shoff, 0, ehsize, 0, 0, shentsize, 3, 2
        )
    else:
        header = ident + struct.pack(
            order + "HHIIIIIHHHHHH", 1, 40, 1, 0, 0, shoff, 0, ehsize, 0, 0, shentsize, 3, 2
        )

    def section(name: int, offset: int, size: int) -> bytes:
        if bits == 64:
            return struct.pack(order + "IIQQQQIIQQ", name, 1, 0, 0, offset, size, 0, 0, 1, 0)
        return struct.pack(order + "IIIIIIIIII", name, 1, 0, 0, offset, size, 0, 0, 1, 0)

    sections = section(0, 0, 0) + section(1, modinfo_off, len(modinfo))
    sections += section(10, shstr_off, len(shstrtab))
    return header + modinfo + shstrtab + sections


@pytest.mark.parametrize(("bits", "big"), [(64, False), (64, True), (32, False)])
def test_vermagic_from_the_modinfo_section(bits: int, big: bool) -> None:
    assert vermagic(elf_module(RT_MAGIC, bits=bits, big=big)) == RT_MAGIC


def test_audit_names_each_module_without_preempt_rt(tmp_path: Path) -> None:
    (tmp_path / "kernel").mkdir()
    (tmp_path / "kernel" / "good.ko").write_bytes(elf_module(RT_MAGIC))
    (tmp_path / "kernel" / "stock.ko").write_bytes(
        elf_module("5.15.148-tegra SMP preempt mod_unload aarch64")
    )
    (tmp_path / "kernel" / "garbage.ko").write_bytes(b"not a module")
    result = audit_modules(tmp_path)
    assert result["count"] == 3
    assert result["bad"] == ["kernel/garbage.ko", "kernel/stock.ko"]
    assert result["modules"]["kernel/good.ko"] == RT_MAGIC


def _artifact(tmp_path: Path, l4t: str = "36.4.3") -> tuple[Path, str]:
    src = tmp_path / "src"
    mods = src / "modules" / "lib" / "modules" / "5.15.148-rt-tegra" / "kernel"
    mods.mkdir(parents=True)
    (mods / "nvgpu.ko").write_bytes(elf_module(RT_MAGIC))
    (src / "modules" / "lib" / "modules" / "5.15.148-rt-tegra" / "build").symlink_to("/nowhere")
    (src / "Image").write_bytes(b"kernel image")
    (src / "config").write_text("CONFIG_PREEMPT_RT=y\n")
    members = collect_members(src / "Image", src / "config", modules_root=src / "modules")
    manifest = build_manifest(
        members, l4t_release=l4t, kernel_release="5.15.148-rt-tegra", config=src / "config"
    )
    dest = tmp_path / "out" / "rt.tar.gz"
    return dest, pack(members, manifest, dest)


def test_pack_is_reproducible_and_verifies(tmp_path: Path) -> None:
    dest, sha = _artifact(tmp_path)
    assert sha == hashlib.sha256(dest.read_bytes()).hexdigest()
    again = tmp_path / "again.tar.gz"
    dest.replace(again)
    _, sha2 = _artifact(tmp_path / "second")
    assert sha2 == sha, "same inputs must give the same bytes (the cache relies on it)"
    manifest = verify(again, sha, tmp_path / "x", l4t_release="36.4.3")
    assert manifest["realtime"] is True
    assert manifest["modules"] == "modules/lib/modules/5.15.148-rt-tegra"
    assert "modules/lib/modules/5.15.148-rt-tegra/build" not in manifest["files"]
    sums = (tmp_path / "x" / "SHA256SUMS").read_text()
    assert "  Image\n" in sums


def test_verify_refuses_bad_checksum_release_and_tampering(tmp_path: Path) -> None:
    dest, sha = _artifact(tmp_path)
    with pytest.raises(ArtifactError, match="does not match the expected"):
        verify(dest, "0" * 64, tmp_path / "a")
    with pytest.raises(ArtifactError, match=r"built for L4T 36\.4\.3, the host runs L4T 36\.3\.0"):
        verify(dest, sha, tmp_path / "b", l4t_release="36.3.0")
    # a file changed after the manifest was written
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(dest) as src, tarfile.open(tampered, "w:gz") as out:
        for member in src.getmembers():
            data = src.extractfile(member)
            assert data is not None
            content = b"evil image" if member.name == "Image" else data.read()
            member.size = len(content)
            out.addfile(member, io.BytesIO(content))
    digest = hashlib.sha256(tampered.read_bytes()).hexdigest()
    with pytest.raises(ArtifactError, match="sha256 other than the manifest's: Image"):
        verify(tampered, digest, tmp_path / "c")


def test_verify_refuses_unsafe_members_and_non_rt(tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as out:
        data = b"x"
        info = tarfile.TarInfo("../etc/passwd")
        info.size = 1
        out.addfile(info, io.BytesIO(data))
    with pytest.raises(ArtifactError, match="relative name"):
        verify(evil, hashlib.sha256(evil.read_bytes()).hexdigest(), tmp_path / "e")
    src = tmp_path / "src"
    src.mkdir()
    (src / "Image").write_bytes(b"img")
    (src / "config").write_text("CONFIG_PREEMPT=y\n")
    members = collect_members(src / "Image", src / "config")
    manifest = build_manifest(
        members, l4t_release="36.4.3", kernel_release="x", config=src / "config"
    )
    assert json.loads(json.dumps(manifest))["realtime"] is False
    sha = pack(members, manifest, tmp_path / "stock.tar.gz")
    with pytest.raises(ArtifactError, match="without CONFIG_PREEMPT_RT"):
        verify(tmp_path / "stock.tar.gz", sha, tmp_path / "s")
