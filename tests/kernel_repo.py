"""Stand-ins for NVIDIA's rt-kernel apt repository and for kernel artifacts, for sim tests.

The repository has NVIDIA's layout (``dists/r36.4/main/binary-<arch>/Packages`` and a
``Release``), the four Orin package names and a postinst that adds the ``real-time``
entry to extlinux.conf and makes it DEFAULT, as NVIDIA's does. The kernel image is a
simulated one (``jetson_rt.sim.bootloader.make_image``). It is served over HTTP on an
address the sim hosts reach: the gateway of the fleet's podman network.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from jetson_rt.sim import bootloader
from jetson_rt.sim import hardware as hw

_COLLECTIONS = str(Path(__file__).resolve().parents[1] / "collections")
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)

from ansible_collections.jetson_rt.fleet.plugins.module_utils import (  # noqa: E402
    kernel_artifact,
)

L4T = "36.4.3"
BUILD = "20250107174145"
ARCHES = ("amd64", "arm64")
ORIN_PACKAGES = (
    "nvidia-l4t-rt-kernel",
    "nvidia-l4t-rt-kernel-headers",
    "nvidia-l4t-rt-kernel-oot-modules",
    "nvidia-l4t-display-rt-kernel",
)

POSTINST = r"""#!/bin/sh
# As NVIDIA's nvidia-l4t-rt-kernel: a "real-time" entry with the primary entry's
# arguments, made DEFAULT.
set -e
conf=/boot/extlinux/extlinux.conf
if [ "$1" = configure ] && [ -f "$conf" ] && ! grep -q '^LABEL real-time' "$conf"; then
    append=$(awk '/^[[:space:]]*LABEL[[:space:]]+primary/ { p = 1 }
                  p && /^[[:space:]]*APPEND/ {
                      sub(/^[[:space:]]*APPEND[[:space:]]+/, ""); print; exit }' "$conf")
    {
        printf '\nLABEL real-time\n\tMENU LABEL real-time kernel\n'
        printf '\tLINUX /boot/Image.real-time\n\tINITRD /boot/initrd\n\tAPPEND %s\n' "$append"
    } >> "$conf"
    sed -i 's/^DEFAULT .*/DEFAULT real-time/' "$conf"
fi
"""

POSTRM = r"""#!/bin/sh
set -e
conf=/boot/extlinux/extlinux.conf
if [ "$1" = remove ] || [ "$1" = purge ]; then
    if [ -f "$conf" ] && grep -q '^LABEL real-time' "$conf"; then
        awk '/^LABEL / { skip = ($2 == "real-time") } !skip { print }' "$conf" > "$conf.tmp"
        mv "$conf.tmp" "$conf"
        sed -i 's/^DEFAULT real-time$/DEFAULT primary/' "$conf"
    fi
fi
"""


def _deb(
    work: Path, name: str, version: str, files: dict[str, str], scripts: dict[str, str]
) -> Path:
    root = work / f"{name}-root"
    (root / "DEBIAN").mkdir(parents=True)
    for rel, text in files.items():
        path = root / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for script, text in scripts.items():
        path = root / "DEBIAN" / script
        path.write_text(text)
        path.chmod(0o755)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: jetson-rt tests <tests@example.invalid>\nSection: kernel\n"
        "Priority: optional\n"
        f"Description: simulated {name} for L4T {L4T}\n"
    )
    deb = work / "pool" / "main" / f"{name}_{version}_all.deb"
    deb.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


def build_repo(work: Path, release: str = "r36.4", image: str | None = None) -> Path:
    """An apt repository with the four Orin RT packages; returns its root."""
    repo = work / "repo"
    version = f"5.15.148-rt-tegra-{L4T}-{BUILD}"
    kernel_image = image or bootloader.make_image(hw.RT_RELEASE, realtime=True)
    debs = [
        _deb(
            repo,
            "nvidia-l4t-rt-kernel",
            version,
            {"/boot/Image.real-time": kernel_image},
            {"postinst": POSTINST, "postrm": POSTRM},
        ),
        _deb(
            repo,
            "nvidia-l4t-rt-kernel-headers",
            version,
            {f"/usr/src/linux-headers-{hw.RT_RELEASE}/Makefile": "# headers\n"},
            {},
        ),
        _deb(
            repo,
            "nvidia-l4t-rt-kernel-oot-modules",
            version,
            {f"/lib/modules/{hw.RT_RELEASE}/updates/nvgpu.ko": "simulated module\n"},
            {},
        ),
        _deb(
            repo,
            "nvidia-l4t-display-rt-kernel",
            version,
            {f"/lib/modules/{hw.RT_RELEASE}/extra/opensrc-disp/nvidia.ko": "simulated\n"},
            {},
        ),
    ]
    stanzas = []
    for deb in debs:
        control = subprocess.run(
            ["dpkg-deb", "--field", str(deb)], check=True, capture_output=True, text=True
        ).stdout.strip()
        data = deb.read_bytes()
        stanzas.append(
            f"{control}\nFilename: {deb.relative_to(repo)}\nSize: {len(data)}\n"
            f"SHA256: {hashlib.sha256(data).hexdigest()}\n"
        )
    packages = "\n".join(stanzas).encode()
    dist = repo / "dists" / release
    index_lines = []
    for arch in ARCHES:
        binary = dist / "main" / f"binary-{arch}"
        binary.mkdir(parents=True, exist_ok=True)
        (binary / "Packages").write_bytes(packages)
        (binary / "Packages.gz").write_bytes(gzip.compress(packages, mtime=0))
        for name in ("Packages", "Packages.gz"):
            data = (binary / name).read_bytes()
            index_lines.append(
                f" {hashlib.sha256(data).hexdigest()} {len(data)} main/binary-{arch}/{name}"
            )
    (dist / "Release").write_text(
        f"Origin: jetson-rt tests\nLabel: rt-kernel\nSuite: {release}\nCodename: {release}\n"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S UTC', time.gmtime())}\n"
        f"Architectures: {' '.join(ARCHES)}\nComponents: main\nSHA256:\n"
        + "\n".join(index_lines)
        + "\n"
    )
    return repo


def bridge_gateway(network: str) -> str:
    """The address of the machine on a podman network: what its containers can reach."""
    out = subprocess.run(
        ["podman", "network", "inspect", network], check=True, capture_output=True, text=True
    ).stdout
    data: list[dict[str, Any]] = json.loads(out)
    for subnet in data[0].get("subnets") or []:
        if subnet.get("gateway"):
            return str(subnet["gateway"])
    raise RuntimeError(f"podman network {network} has no gateway")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve(root: Path, address: str) -> Iterator[str]:
    """Serve ``root`` over HTTP on ``address`` (a free port); yields the base URL."""
    server = ThreadingHTTPServer((address, 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{address}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def make_artifact(
    work: Path,
    name: str,
    *,
    l4t_release: str = L4T,
    release: str = "5.15.148-rt-jetson-rt",
    boot: str = "ok",
    modules: tuple[str, ...] | None = None,
) -> tuple[Path, str]:
    """A kernel artifact around a simulated image, as rt_kernel_build packs one."""
    src = work / f"{name}-src"
    (src / "modules" / "lib" / "modules" / release / "kernel").mkdir(parents=True)
    image = src / "Image"
    image.write_text(bootloader.make_image(release, realtime=True, boot=boot, modules=modules))
    config = src / "config"
    config.write_text("CONFIG_PREEMPT_RT=y\nCONFIG_NO_HZ_FULL=y\n")
    (src / "modules" / "lib" / "modules" / release / "kernel" / "nvgpu.ko").write_text(
        "vermagic=" + release + " SMP preempt_rt mod_unload aarch64\n"
    )
    members = kernel_artifact.collect_members(image, config, modules_root=src / "modules")
    manifest = kernel_artifact.build_manifest(
        members, l4t_release=l4t_release, kernel_release=release, config=config
    )
    dest = work / f"{name}.tar.gz"
    return dest, kernel_artifact.pack(members, manifest, dest)


def elf_module(magic: str) -> bytes:
    """A minimal 64-bit little-endian ELF with a .modinfo section carrying ``magic``."""
    modinfo = f"license=GPL\0vermagic={magic}\0".encode()
    shstrtab = b"\0.modinfo\0.shstrtab\0"
    shoff = 64 + len(modinfo) + len(shstrtab)
    ident = b"\x7fELF" + bytes([2, 1, 1]) + b"\0" * 9
    header = ident + struct.pack("<HHIQQQIHHHHHH", 1, 183, 1, 0, 0, shoff, 0, 64, 0, 0, 64, 3, 2)

    def section(name: int, offset: int, size: int) -> bytes:
        return struct.pack("<IIQQQQIIQQ", name, 1, 0, 0, offset, size, 0, 0, 1, 0)

    sections = section(0, 0, 0) + section(1, 64, len(modinfo))
    sections += section(10, 64 + len(modinfo), len(shstrtab))
    return header + modinfo + shstrtab + sections


FAKE_MAKEFILE = """\
# A stand-in kernel tree: the make targets rt_kernel_build calls, in seconds.
RELEASE := 5.15.148-rt-src$(LOCALVERSION)
defconfig tinyconfig:
\tprintf 'CONFIG_SMP=y\\n' > .config
olddefconfig:
\tsort -u .config -o .config
kernelrelease:
\t@echo $(RELEASE)
Image:
\tmkdir -p arch/arm64/boot && cp image.txt arch/arm64/boot/Image
modules:
\t@echo "  CC [M]  ko/*.ko"
modules_install:
\tmkdir -p $(INSTALL_MOD_PATH)/lib/modules/$(RELEASE)/kernel
\tcp ko/*.ko $(INSTALL_MOD_PATH)/lib/modules/$(RELEASE)/kernel/
"""

FAKE_MERGE_CONFIG = """#!/bin/sh
# merge_config.sh -m BASE FRAGMENT...: the fragments appended to BASE
[ "$1" = -m ] && shift
base=$1
shift
cat "$@" >> "$base"
"""


def make_kernel_sources(work: Path, name: str, modules: dict[str, str]) -> tuple[Path, str]:
    """A kernel source tarball whose build takes seconds and yields a sim RT image."""
    top = work / name / "linux-fake"
    (top / "scripts" / "kconfig").mkdir(parents=True)
    (top / "ko").mkdir()
    (top / "Makefile").write_text(FAKE_MAKEFILE)
    merge = top / "scripts" / "kconfig" / "merge_config.sh"
    merge.write_text(FAKE_MERGE_CONFIG)
    merge.chmod(0o755)
    (top / "image.txt").write_text(
        bootloader.make_image("5.15.148-rt-src-jetson-rt", realtime=True)
    )
    for module, magic in modules.items():
        (top / "ko" / f"{module}.ko").write_bytes(elf_module(magic))
    tarball = work / f"{name}.tar.gz"
    subprocess.run(["tar", "-czf", str(tarball), "-C", str(top.parent), "linux-fake"], check=True)
    return tarball, hashlib.sha256(tarball.read_bytes()).hexdigest()
