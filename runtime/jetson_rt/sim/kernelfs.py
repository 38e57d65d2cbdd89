"""Serve the simulated kernels of a fleet over FUSE.

One daemon per fleet mounts a tree ``<mount>/<host>/{sys,proc,control}``. Each sim
host bind-mounts its own subtree over ``/sys`` and over single ``/proc`` files at
boot (see ``files/sim-init``), so reads and writes of kernel files inside the host
reach :class:`jetson_rt.sim.kernel.SimKernel` and never the machine's kernel.

``control/`` is the sim's own interface, readable and writable by root only:
``boot`` (the boot loader hands over extlinux.conf and the files it names, as
JSON), ``booted`` (what was booted, as JSON), ``swap`` (the sim's swapon and
swapoff), ``state`` (a summary for ``jetson-rt sim status``), ``rootfs`` (slot A's
retry count and status as JSON; the sim's ``nvbootctrl`` writes ``verify`` or
``reset``), ``module`` (the module part number the device tree shows, e.g.
``p3767-0003``; writable, it outlives reboots).
"""

from __future__ import annotations

import errno
import json
import stat
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from jetson_rt.sim.bootloader import RootfsState, choose
from jetson_rt.sim.kernel import Dir, File, KernelError, Link, Node, SimKernel

try:  # fusepy is a controller-side dependency; the module must import without it.
    from fuse import FUSE, FuseOSError, Operations  # type: ignore[import-untyped]
except (ImportError, OSError):  # pragma: no cover - exercised where fusepy is absent
    FUSE = None
    Operations = object

    class FuseOSError(OSError):  # type: ignore[no-redef]
        def __init__(self, code: int) -> None:
            super().__init__(code, "")


CONTROL_FILES = ("boot", "booted", "swap", "state", "rootfs", "module")


class _Control:
    """A node of the sim's control interface."""

    def __init__(self, name: str) -> None:
        self.name = name


class KernelFs(Operations):  # type: ignore[misc]
    """FUSE operations over every host under ``state_dir/hosts``."""

    def __init__(self, state_dir: Path) -> None:
        self.hosts_dir = state_dir / "hosts"
        self.kernels: dict[str, tuple[SimKernel, Dir]] = {}
        self._mutex = threading.Lock()
        self.buffers: dict[int, bytearray] = {}
        self.contents: dict[int, bytes] = {}
        self.next_fh = 1
        self.started = time.time()

    # --- lookup ---------------------------------------------------------------------

    def _kernel(self, host: str) -> tuple[SimKernel, Dir]:
        with self._mutex:
            if host not in self.kernels:
                state = self.hosts_dir / host / "kernel.json"
                if not (self.hosts_dir / host).is_dir():
                    raise FuseOSError(errno.ENOENT)
                kernel = SimKernel.load(host, state)
                self.kernels[host] = (kernel, kernel.tree())
            return self.kernels[host]

    def _resolve(self, path: str) -> tuple[SimKernel | None, Node | _Control | None]:
        parts = [p for p in path.split("/") if p]
        if not parts:
            return None, None
        kernel, tree = self._kernel(parts[0])
        if len(parts) >= 2 and parts[1] == "control":
            if len(parts) == 2:
                return kernel, _Control("")
            if len(parts) == 3 and parts[2] in CONTROL_FILES:
                return kernel, _Control(parts[2])
            raise FuseOSError(errno.ENOENT)
        node: Node = tree
        for part in parts[1:]:
            if not isinstance(node, Dir):
                raise FuseOSError(errno.ENOTDIR)
            children = node.children()
            if part not in children:
                raise FuseOSError(errno.ENOENT)
            node = children[part]
        return kernel, node

    # --- attributes -----------------------------------------------------------------

    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        _, node = self._resolve(path)
        base = {
            "st_uid": 0,
            "st_gid": 0,
            "st_atime": self.started,
            "st_mtime": self.started,
            "st_ctime": self.started,
        }
        if node is None or isinstance(node, Dir):
            mode = 0o755 if node is None else node.mode
            return {**base, "st_mode": stat.S_IFDIR | mode, "st_nlink": 2}
        if isinstance(node, _Control):
            if not node.name:
                return {**base, "st_mode": stat.S_IFDIR | 0o700, "st_nlink": 2}
            mode = 0o600 if node.name in ("boot", "swap", "rootfs", "module") else 0o400
            return {**base, "st_mode": stat.S_IFREG | mode, "st_nlink": 1, "st_size": 0}
        if isinstance(node, Link):
            return {
                **base,
                "st_mode": stat.S_IFLNK | 0o777,
                "st_nlink": 1,
                "st_size": len(node.target),
            }
        return {**base, "st_mode": stat.S_IFREG | node.mode, "st_nlink": 1, "st_size": node.size}

    def readdir(self, path: str, fh: int) -> list[str]:
        _, node = self._resolve(path)
        if node is None:
            names = (
                sorted(p.name for p in self.hosts_dir.iterdir() if p.is_dir())
                if self.hosts_dir.is_dir()
                else []
            )
        elif isinstance(node, _Control):
            names = list(CONTROL_FILES)
        elif isinstance(node, Dir):
            names = sorted(node.children())
            if path.count("/") == 1:
                names.append("control")
        else:
            raise FuseOSError(errno.ENOTDIR)
        return [".", "..", *names]

    def readlink(self, path: str) -> str:
        _, node = self._resolve(path)
        if not isinstance(node, Link):
            raise FuseOSError(errno.EINVAL)
        return node.target

    # --- I/O ------------------------------------------------------------------------

    def open(self, path: str, fi: Any) -> int:
        kernel, node = self._resolve(path)
        writing = fi.flags & 3 != 0
        if isinstance(node, Dir) or node is None:
            raise FuseOSError(errno.EISDIR)
        if isinstance(node, File) and writing and node.write is None:
            raise FuseOSError(errno.EACCES)
        with self._mutex:
            fh = self.next_fh
            self.next_fh += 1
        if not writing:
            self.contents[fh] = self._read_all(kernel, node)
        else:
            self.buffers[fh] = bytearray()
        fi.fh = fh
        # Kernel files are generated on every open: never cache, never trust st_size.
        fi.direct_io = 1
        return 0

    def _read_all(self, kernel: SimKernel | None, node: Node | _Control) -> bytes:
        assert kernel is not None
        if isinstance(node, _Control):
            if node.name == "booted":
                return json.dumps(kernel.state.boot).encode() + b"\n"
            if node.name == "state":
                return json.dumps(kernel.describe(), indent=1).encode() + b"\n"
            if node.name == "rootfs":
                return json.dumps(kernel.state.rootfs).encode() + b"\n"
            if node.name == "module":
                return kernel.state.module_sku.encode() + b"\n"
            raise FuseOSError(errno.EACCES)
        if isinstance(node, File):
            with kernel.lock:
                text = node.read()
            return (text if text.endswith("\n") else text + "\n").encode()
        raise FuseOSError(errno.EINVAL)

    def read(self, path: str, size: int, offset: int, fi: Any) -> bytes:
        data = self.contents.get(fi.fh, b"")
        return data[offset : offset + size]

    def write(self, path: str, data: bytes, offset: int, fi: Any) -> int:
        _, node = self._resolve(path)
        if isinstance(node, _Control):
            self.buffers.setdefault(fi.fh, bytearray()).extend(data)
            return len(data)
        if not isinstance(node, File) or node.write is None:
            raise FuseOSError(errno.EACCES)
        try:
            # Like sysfs, each write() is one store of the whole buffer.
            node.write(data.decode("utf-8", "replace").strip("\x00"))
        except KernelError as exc:
            raise FuseOSError(exc.errno) from exc
        return len(data)

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        _, node = self._resolve(path)
        if isinstance(node, File) and node.write is not None:
            return 0
        if isinstance(node, _Control) and node.name in ("boot", "swap", "rootfs", "module"):
            return 0
        raise FuseOSError(errno.EACCES)

    def flush(self, path: str, fi: Any) -> int:
        buffer = self.buffers.pop(fi.fh, None)
        if buffer is None:
            return 0
        kernel, node = self._resolve(path)
        if not isinstance(node, _Control) or kernel is None:
            return 0
        try:
            if node.name == "boot":
                request = json.loads(buffer.decode())
                with kernel.lock:
                    slot = RootfsState.from_state(kernel.state.rootfs)
                    record = choose(request.get("extlinux"), request.get("files", {}), slot)
                    kernel.state.rootfs = asdict(slot)
                    kernel.power_on(record)
            elif node.name == "swap":
                kernel.swap_command(buffer.decode().strip())
            elif node.name == "rootfs":
                kernel.rootfs_command(buffer.decode().strip())
            elif node.name == "module":
                kernel.set_module(buffer.decode())
        except KernelError as exc:
            raise FuseOSError(exc.errno) from exc
        except (ValueError, AttributeError) as exc:
            raise FuseOSError(errno.EINVAL) from exc
        return 0

    def release(self, path: str, fi: Any) -> int:
        self.contents.pop(fi.fh, None)
        self.buffers.pop(fi.fh, None)
        return 0

    def chmod(self, path: str, mode: int) -> int:
        raise FuseOSError(errno.EPERM)

    def chown(self, path: str, uid: int, gid: int) -> int:
        raise FuseOSError(errno.EPERM)

    def utimens(self, path: str, times: tuple[float, float] | None = None) -> int:
        return 0


def serve(state_dir: Path, mountpoint: Path) -> None:
    """Mount and serve until unmounted (blocks)."""
    if FUSE is None:
        from jetson_rt.errors import SimError

        raise SimError(
            "fusepy and libfuse2 are needed for the simulated fleet "
            "(pip install 'jetson-rt[controller]'; apt-get install libfuse2)"
        )
    mountpoint.mkdir(parents=True, exist_ok=True)
    FUSE(
        KernelFs(state_dir),
        str(mountpoint),
        foreground=True,
        allow_other=True,
        raw_fi=True,
        nothreads=False,
        attr_timeout=0,
        entry_timeout=0,
        negative_timeout=0,
        fsname="jetson-rt-sim",
        default_permissions=True,
    )
