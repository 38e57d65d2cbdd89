"""Captured file trees of Jetson hosts, written into a temporary root for tests.

The values are those of real devices: an Orin Nano developer kit on L4T R36.4.3
(JetPack 6.2, GPU devfreq under bus@0), an AGX Orin on R35.4.1 (JetPack 5, the
ga10b devfreq path and /proc/device-tree only), and a plain x86 server.
"""

from __future__ import annotations

from pathlib import Path

R36_RELEASE = (
    "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
    "DATE: Wed Jan  8 01:49:37 UTC 2025\n# KERNEL_VARIANT: oot\n"
)
R35_RELEASE = (
    "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, "
    "DATE: Tue Aug  1 19:57:35 UTC 2023\n"
)
NVPMODEL_CONF = """\
< PARAM TYPE=FILE NAME=CPU_ONLINE >
CORE_0 /sys/devices/system/cpu/cpu0/online
< POWER_MODEL ID=0 NAME=15W >
CPU_ONLINE CORE_0 1
CPU_ONLINE CORE_4 1
CPU_ONLINE CORE_5 1
< POWER_MODEL ID=1 NAME=25W >
CPU_ONLINE CORE_4 1
< POWER_MODEL ID=2 NAME=MAXN_SUPER >
CPU_ONLINE CORE_4 1
# < POWER_MODEL ID=9 NAME=COMMENTED >
< POWER_MODEL ID=3 NAME=7W >
CPU_ONLINE CORE_0 1
CPU_ONLINE CORE_4 0
CPU_ONLINE CORE_5 0
< PM_CONFIG DEFAULT=2 >
"""


def put(root: Path, rel: str, content: str | bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


def orin_nano_r36(root: Path, *, realtime: bool = True) -> Path:
    dt = "sys/firmware/devicetree/base"
    put(root, f"{dt}/model", b"NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super\0")
    put(
        root,
        f"{dt}/compatible",
        b"nvidia,p3768-0000+p3767-0005-super\0nvidia,p3767-0005\0nvidia,tegra234\0",
    )
    for n, addr in ((0, "15880000"), (1, "158c0000")):
        put(root, f"{dt}/bus@0/host1x@13e00000/nvdla{n}@{addr}/status", b"disabled\0")
    put(root, "etc/nv_tegra_release", R36_RELEASE)
    put(root, "etc/nvpmodel.conf", NVPMODEL_CONF)
    put(root, "var/lib/nvpmodel/status", "pmode:0002 fmode:quiet\n")
    put(
        root, "proc/sys/kernel/osrelease", "5.15.148-rt-tegra\n" if realtime else "5.15.148-tegra\n"
    )
    if realtime:
        put(root, "sys/kernel/realtime", "1\n")
    put(
        root,
        "proc/cmdline",
        "root=/dev/mmcblk0p1 rw isolcpus=managed_irq,domain,4-5 "
        "nohz_full=4-5 rcu_nocbs=4-5 irqaffinity=0-3 quiet\n",
    )
    cpu = "sys/devices/system/cpu"
    put(root, f"{cpu}/present", "0-5\n")
    put(root, f"{cpu}/online", "0-5\n")
    put(root, f"{cpu}/isolated", "4-5\n")
    put(root, f"{cpu}/nohz_full", "4-5\n")
    for n in range(6):
        freq = f"{cpu}/cpu{n}/cpufreq"
        put(root, f"{freq}/scaling_governor", "performance\n")
        put(root, f"{freq}/scaling_cur_freq", "1728000\n")
        put(root, f"{freq}/scaling_min_freq", "1728000\n")
        put(root, f"{freq}/scaling_max_freq", "1728000\n")
        put(root, f"{freq}/cpuinfo_max_freq", "1728000\n")
    put(root, "sys/kernel/mm/transparent_hugepage/enabled", "always madvise [never]\n")
    put(
        root,
        "sys/kernel/mm/transparent_hugepage/defrag",
        "always defer defer+madvise madvise [never]\n",
    )
    gpu = "sys/devices/platform/bus@0/17000000.gpu"
    put(root, f"{gpu}/devfreq/17000000.gpu/cur_freq", "1020000000\n")
    put(root, f"{gpu}/devfreq/17000000.gpu/min_freq", "1020000000\n")
    put(root, f"{gpu}/devfreq/17000000.gpu/max_freq", "1020000000\n")
    put(
        root,
        f"{gpu}/devfreq/17000000.gpu/available_frequencies",
        "306000000 612000000 1020000000\n",
    )
    put(root, f"{gpu}/devfreq/17000000.gpu/governor", "nvhost_podgov\n")
    put(root, f"{gpu}/power/control", "on\n")
    for n, (name, temp) in enumerate((("cpu-thermal", "51250"), ("gpu-thermal", "49500"))):
        zone = f"sys/class/thermal/thermal_zone{n}"
        put(root, f"{zone}/type", name + "\n")
        put(root, f"{zone}/temp", temp + "\n")
        put(root, f"{zone}/trip_point_0_type", "passive\n")
        put(root, f"{zone}/trip_point_0_temp", "99000\n")
        put(root, f"{zone}/trip_point_1_type", "critical\n")
        put(root, f"{zone}/trip_point_1_temp", "104500\n")
    put(
        root,
        "proc/meminfo",
        "MemTotal:        7620560 kB\nMemFree:         5012345 kB\n"
        "MemAvailable:    6123456 kB\nSwapTotal:             0 kB\n",
    )
    put(root, "proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")
    return root


def agx_orin_r35(root: Path) -> Path:
    dt = "proc/device-tree"
    put(root, f"{dt}/model", b"Jetson AGX Orin\0")
    put(
        root,
        f"{dt}/compatible",
        b"nvidia,p3737-0000+p3701-0000\0nvidia,p3701-0000\0nvidia,tegra234\0",
    )
    put(root, "etc/nv_tegra_release", R35_RELEASE)
    put(root, "proc/sys/kernel/osrelease", "5.10.120-tegra\n")
    put(root, "proc/cmdline", "root=/dev/mmcblk0p1 rw rootwait\n")
    cpu = "sys/devices/system/cpu"
    put(root, f"{cpu}/present", "0-11\n")
    put(root, f"{cpu}/online", "0-11\n")
    put(root, f"{cpu}/isolated", "\n")
    put(root, f"{cpu}/nohz_full", "(null)\n")
    put(root, "sys/devices/gpu.0/devfreq/17000000.ga10b/cur_freq", "306000000\n")
    put(root, "sys/devices/gpu.0/devfreq/17000000.ga10b/max_freq", "1300500000\n")
    put(
        root, "proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n/dev/zram0\tpartition\t1\t0\t5\n"
    )
    return root


def x86_server(root: Path) -> Path:
    put(root, "proc/sys/kernel/osrelease", "6.1.0-18-amd64\n")
    put(root, "proc/cmdline", "BOOT_IMAGE=/vmlinuz root=UUID=1234 ro quiet\n")
    put(root, "sys/devices/system/cpu/present", "0-3\n")
    put(root, "sys/devices/system/cpu/online", "0-3\n")
    return root
