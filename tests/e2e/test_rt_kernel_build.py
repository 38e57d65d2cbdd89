"""The source path end to end (marker slow, `make test-kernel-build`; not in CI).

Debian's linux-source-6.12 (PREEMPT_RT is mainline) stands in for L4T's sources: role
rt_kernel_build cross-compiles it for arm64 with a small config plus PREEMPT_RT and
NO_HZ_FULL, audits the module vermagic and packs the artifact; the Image boots under
qemu-system-aarch64 -smp 6 with the APPEND line rt_kernel writes for the candidate entry
(isolation 4-5), and /init reports /sys/kernel/realtime and the isolated CPUs from inside
the VM and runs a cyclictest-style measurement on CPU 4. A second run must hit the cache.

Needs root-installed packages: linux-source-6.12 gcc-aarch64-linux-gnu libc6-dev-arm64-cross
qemu-system-arm flex bison bc (the make target installs them). CPU-heavy: run it niced
(the role builds with nice -n 19) on an otherwise idle machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

from ansible_collections.jetson_rt.fleet.plugins.module_utils.extlinux import (  # noqa: E402
    ExtlinuxConf,
    isolation_args,
)

# A kernel build on a small machine takes far longer than the suite's default timeout.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(5400)]

SOURCES = Path("/usr/src/linux-source-6.12.tar.xz")
CROSS = "aarch64-linux-gnu-"
FRAGMENT = """\
CONFIG_SMP=y
CONFIG_NR_CPUS=8
CONFIG_PRINTK=y
CONFIG_TTY=y
CONFIG_SERIAL_AMBA_PL011=y
CONFIG_SERIAL_AMBA_PL011_CONSOLE=y
CONFIG_BLK_DEV_INITRD=y
CONFIG_BINFMT_ELF=y
CONFIG_PROC_FS=y
CONFIG_SYSFS=y
CONFIG_POSIX_TIMERS=y
CONFIG_HIGH_RES_TIMERS=y
CONFIG_FUTEX=y
CONFIG_PREEMPT_RT=y
CONFIG_NO_HZ_FULL=y
CONFIG_CPU_ISOLATION=y
CONFIG_RCU_NOCB_CPU=y
CONFIG_MODULES=y
CONFIG_MODULE_UNLOAD=y
CONFIG_CRC_CCITT=m
CONFIG_CRC_ITU_T=m
"""
STOCK_APPEND = (
    "${cbootargs} root=/dev/mmcblk0p1 rw rootwait rootfstype=ext4 mminit_loglevel=4 "
    "console=ttyTCU0,115200 firmware_class.path=/etc/firmware fbcon=map:0 nospectre_bhb "
    "video=efifb:off console=tty0"
)


def _missing_tools() -> list[str]:
    tools = [f"{CROSS}gcc", "qemu-system-aarch64", "flex", "bison", "bc", "make"]
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if not SOURCES.exists():
        missing.append(str(SOURCES))
    return missing


def newc(entries: list[tuple[str, int, bytes, tuple[int, int]]]) -> bytes:
    """A cpio (newc) archive: (name, mode, data, (rdev major, minor)); no root needed."""
    out = bytearray()
    for ino, (name, mode, data, (major, minor)) in enumerate(
        [*entries, ("TRAILER!!!", 0, b"", (0, 0))], start=1
    ):
        encoded = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, major, minor, len(encoded), 0)
        out += b"070701" + b"".join(f"{v:08x}".encode() for v in fields) + encoded
        out += b"\0" * (-len(out) % 4)
        out += data
        out += b"\0" * (-len(out) % 4)
    return bytes(out) + b"\0" * (-len(out) % 512)


def candidate_append() -> str:
    """The candidate entry's APPEND as rt_kernel writes it (same module_utils code)."""
    conf = ExtlinuxConf.from_bytes(
        f"TIMEOUT 30\nDEFAULT primary\nLABEL primary\n  LINUX /boot/Image\n"
        f"  APPEND {STOCK_APPEND}\n".encode()
    )
    conf.copy_entry("primary", "real-time")
    to_set, to_remove = isolation_args("4-5", flags=["managed_irq", "domain"], ncpus=6)
    conf.edit_args("real-time", to_set, to_remove)
    entry = conf.entry("real-time")
    assert entry is not None
    return str(entry["append"])


def run_build(
    work: Path, sources_sha: str, initrd: Path, *args: str
) -> tuple[dict[str, object], float]:
    fragment = work / "e2e.config"
    fragment.write_text(FRAGMENT)
    extra = {
        "rt_kernel_build_layout": "kernel",
        "rt_kernel_build_sources": str(SOURCES),
        "rt_kernel_build_sources_sha256": sources_sha,
        "rt_kernel_build_l4t_release": "36.4.3",
        "rt_kernel_build_dir": str(work / "build"),
        "rt_kernel_build_cache_dir": str(work / "cache"),
        "rt_kernel_build_defconfig": "tinyconfig",
        "rt_kernel_build_config_fragments": [str(fragment)],
        # mainline has PREEMPT_RT but not the RT patch set's /sys/kernel/realtime
        "rt_kernel_build_patches": [str(Path(__file__).with_name("sysfs-realtime.patch"))],
        "rt_kernel_build_config": {"CONFIG_PREEMPT_RT": "y"},
        "rt_kernel_build_dtbs": False,
        "rt_kernel_build_initrd": str(initrd),
        "rt_kernel_build_localversion": "-jetson-rt",
    }
    playbook = work / "build.yml"
    playbook.write_text(
        "- name: Build | RT kernel\n  hosts: localhost\n  gather_facts: false\n"
        "  roles:\n    - role: rt_kernel_build\n"
        "  post_tasks:\n    - name: Build | result\n      ansible.builtin.copy:\n"
        "        dest: " + str(work / "result.json") + "\n"
        '        content: \'{{ {"artifact": rt_kernel_build_artifact, "sha256": '
        'rt_kernel_build_artifact_sha256, "cached": rt_kernel_build_cached, '
        "\"manifest\": rt_kernel_build_manifest} | to_json }}'\n        mode: '0644'\n"
    )
    start = time.monotonic()
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            "localhost,",
            "-c",
            "local",
            str(playbook),
            "-e",
            json.dumps(extra),
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            *args,
        ],
        cwd=REPO,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    data: dict[str, object] = json.loads((work / "result.json").read_text())
    return data, elapsed


def test_source_build_boots_rt_under_qemu_and_is_cached(tmp_path: Path) -> None:
    missing = _missing_tools()
    if missing:
        pytest.skip(f"missing: {', '.join(missing)} (make test-kernel-build installs them)")
    work = Path(os.environ.get("JETSON_RT_E2E_DIR", tmp_path))
    work.mkdir(parents=True, exist_ok=True)
    init = work / "init"
    subprocess.run(
        [f"{CROSS}gcc", "-static", "-O2", "-pthread", "-o", str(init),
         str(Path(__file__).with_name("rt_init.c"))],
        check=True,
    )  # fmt: skip
    initrd = work / "initrd.cpio"
    initrd.write_bytes(
        newc(
            [
                ("dev", 0o040755, b"", (0, 0)),
                ("dev/console", 0o020600, b"", (5, 1)),
                ("proc", 0o040755, b"", (0, 0)),
                ("sys", 0o040755, b"", (0, 0)),
                ("init", 0o100755, init.read_bytes(), (0, 0)),
            ]
        )
    )
    sources_sha = hashlib.sha256(SOURCES.read_bytes()).hexdigest()

    first, build_s = run_build(work, sources_sha, initrd)
    manifest = first["manifest"]
    assert isinstance(manifest, dict)
    assert manifest["realtime"] is True
    assert manifest["kernel_release"].endswith("-jetson-rt")
    assert manifest["modules_audited"] >= 1

    second, cached_s = run_build(work, sources_sha, initrd)
    assert second["cached"] is True and second["sha256"] == first["sha256"]

    unpacked = work / "unpacked"
    shutil.rmtree(unpacked, ignore_errors=True)
    unpacked.mkdir()
    subprocess.run(["tar", "-xzf", str(first["artifact"]), "-C", str(unpacked)], check=True)
    # ${cbootargs} is what UEFI passes on a Jetson; here the VM's console, and a panic
    # powers the VM off instead of hanging it
    append = candidate_append().replace("${cbootargs}", "earlycon") + " console=ttyAMA0 panic=-1"
    start = time.monotonic()
    vm = subprocess.run(
        [
            "nice", "-n", "19", "qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a57",
            "-smp", "6", "-m", "256", "-nographic", "-nic", "none", "-no-reboot",
            "-kernel", str(unpacked / "Image"), "-initrd", str(unpacked / "initrd"),
            "-append", append,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )  # fmt: skip
    boot_s = time.monotonic() - start
    report = {
        line.split("=", 1)[0][4:]: line.split("=", 1)[1]
        for line in vm.stdout.splitlines()
        if line.startswith("JRT ") and "=" in line
    }
    latency = next((line for line in vm.stdout.splitlines() if "JRT cyclictest" in line), "")
    (work / "e2e-times.json").write_text(
        json.dumps(
            {
                "build_s": round(build_s, 1),
                "cached_rerun_s": round(cached_s, 1),
                "qemu_boot_and_test_s": round(boot_s, 1),
                "kernel_release": manifest["kernel_release"],
                "cyclictest": latency,
            },
            indent=1,
        )
    )
    assert report.get("realtime") == "1", vm.stdout[-4000:]
    assert report.get("isolated") == "4-5", vm.stdout[-4000:]
    assert report.get("nohz_full") == "4-5"
    assert "isolcpus=managed_irq,domain,4-5" in report.get("cmdline", "")
    assert "PREEMPT_RT" in report.get("version", "")
    assert "JRT done" in vm.stdout and " C:" in latency
