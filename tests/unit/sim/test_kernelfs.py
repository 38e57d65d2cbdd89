"""The simulated kernels' control files, as sim-init, nvbootctrl and sim status use them
(the FUSE operations called directly; no mount)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

from jetson_rt.sim import bootloader
from jetson_rt.sim import hardware as hw
from jetson_rt.sim.kernelfs import KernelFs

STOCK_EXTLINUX = (Path(bootloader.__file__).parent / "files" / "extlinux.conf").read_text()


def control_write(fs: KernelFs, path: str, text: str) -> None:
    fi = SimpleNamespace(flags=os.O_WRONLY, fh=0, direct_io=0)
    fs.open(path, fi)
    fs.truncate(path, 0)
    fs.write(path, text.encode(), 0, fi)
    fs.flush(path, fi)
    fs.release(path, fi)


def control_read(fs: KernelFs, path: str) -> str:
    fi = SimpleNamespace(flags=os.O_RDONLY, fh=0, direct_io=0)
    fs.open(path, fi)
    data = fs.read(path, 1 << 20, 0, fi)
    fs.release(path, fi)
    return data.decode()


def boot(fs: KernelFs, image: str) -> dict[str, object]:
    files = {"/boot/Image": image, "/boot/initrd": ""}
    control_write(fs, "/h1/control/boot", json.dumps({"extlinux": STOCK_EXTLINUX, "files": files}))
    state = json.loads(control_read(fs, "/h1/control/state"))
    assert isinstance(state, dict)
    return state


def test_a_panic_loop_reaches_the_recovery_kernel_and_a_reset_ends_it(tmp_path: Path) -> None:
    (tmp_path / "hosts" / "h1").mkdir(parents=True)
    fs = KernelFs(tmp_path)
    good, panics = bootloader.make_image(), bootloader.make_image(boot="panic")
    assert boot(fs, good)["outcome"] == "ok"
    control_write(fs, "/h1/control/rootfs", "verify")  # nv-l4t-bootloader-config.service
    outcomes = [boot(fs, panics)["outcome"] for _ in range(4)]
    assert outcomes == ["panic", "panic", "panic", "recovery"]
    state = boot(fs, good)
    assert state["outcome"] == "recovery" and state["linux"] == "recovery partition"
    assert json.loads(control_read(fs, "/h1/control/rootfs"))["status"] == "unbootable"
    control_write(fs, "/h1/control/rootfs", "reset")  # the UEFI menu
    state = boot(fs, good)
    assert state["outcome"] == "ok" and state["booted"] == "primary"
    assert state["kernel_partition"] == {  # what `sim status` shows of the fallback
        "release": hw.STOCK_RELEASE,
        "cmdline": f"{hw.KERNEL_PARTITION_CMDLINE} {hw.PLATFORM_ARGS}",
    }
    # the count survives the daemon: it is in the host's state file
    again = KernelFs(tmp_path)
    assert json.loads(control_read(again, "/h1/control/rootfs"))["retry_count"] == 2
