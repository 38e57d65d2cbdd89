"""What a simulated Jetson Orin Nano 8GB on L4T R36.4 looks like to software.

Values are modelled on a developer kit with JetPack 6.2 ("super" power modes):
the module's device tree, its interrupt table, its clocks and thermal zones, and
the power-mode table of ``nvpmodel_p3767_0003_super.conf``.
"""

from __future__ import annotations

from dataclasses import dataclass

MODEL = "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super"
# The module's part number (p3767-0005: the developer kit's Orin Nano 8GB); a host's own
# can be changed through the sim's control/module file (another Orin Nano SKU, e.g.
# p3767-0003 or -0004, for tests of per-module behaviour such as engine fingerprints).
MODULE_SKU = "p3767-0005"


def compatible(module_sku: str = MODULE_SKU) -> tuple[str, ...]:
    """The device tree's ``compatible`` entries of the developer kit carrying ``module_sku``."""
    return (f"nvidia,p3768-0000+{module_sku}-super", f"nvidia,{module_sku}", "nvidia,tegra234")


COMPATIBLE = compatible()
SERIAL_PREFIX = "14241250"
NV_TEGRA_RELEASE = (
    "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
    "DATE: Wed Jan  8 01:49:37 UTC 2025\n"
    "# KERNEL_VARIANT: oot\n"
    "TARGET_USERSPACE_LIB_DIR=nvidia\n"
    "TARGET_USERSPACE_LIB_DIR_PATH=usr/lib/aarch64-linux-gnu/nvidia\n"
)

CPUS = 6
# cpufreq policies: the two CPU clusters of the Orin Nano.
CLUSTERS = ((0, 1, 2, 3), (4, 5))
CPU_FREQS_KHZ = (
    115200,
    192000,
    268800,
    345600,
    422400,
    499200,
    576000,
    652800,
    729600,
    806400,
    883200,
    960000,
    1036800,
    1113600,
    1190400,
    1267200,
    1344000,
    1420800,
    1497600,
    1574400,
    1651200,
    1728000,
)
CPU_GOVERNORS = ("conservative", "ondemand", "userspace", "powersave", "performance", "schedutil")
CPU_DEFAULT_GOVERNOR = "schedutil"

GPU_FREQS_HZ = (
    306000000,
    408000000,
    510000000,
    612000000,
    714000000,
    816000000,
    918000000,
    1020000000,
)
GPU_GOVERNORS = ("nvhost_podgov", "userspace", "performance", "simple_ondemand")
GPU_DEVFREQ = "devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu"
GPU_POWER = "devices/platform/bus@0/17000000.gpu/power"
# cpuidle states of an Orin CPU (name, exit latency in us): jetson_clocks disables them.
CPUIDLE = (("WFI", 1), ("c7", 1000))
EMC_MAX_HZ = 3199000000
EMC_MIN_HZ = 204000000

# (name, type of the first trip, its temperature, critical) in millidegrees.
THERMAL_ZONES = (
    ("cpu-thermal", 47500),
    ("gpu-thermal", 46300),
    ("cv0-thermal", 45900),
    ("cv1-thermal", 46100),
    ("cv2-thermal", 45800),
    ("soc0-thermal", 46700),
    ("soc1-thermal", 46900),
    ("soc2-thermal", 46400),
    ("tj-thermal", 47500),
)
THERMAL_TRIPS = (("passive", 99000), ("hot", 103000), ("critical", 104500))

# Power modes (nvpmodel_p3767_0003_super.conf): id, name, CPUs online, CPU max kHz,
# GPU max Hz. 7W takes the second cluster offline.
POWER_MODES = (
    (0, "15W", CPUS, 1497600, 612000000),
    (1, "25W", CPUS, 1344000, 918000000),
    (2, "MAXN_SUPER", CPUS, 1728000, 1020000000),
    (3, "7W", 4, 960000, 408000000),
)
POWER_MODE_DEFAULT = 0

# Kernel modules a stock R36.4 kernel loads (name, size).
MODULES = (
    ("nvgpu", 2473984),
    ("nvethernet", 569344),
    ("nvmap", 204800),
    ("host1x", 180224),
    ("tegra_drm", 327680),
    ("nvidia_drm", 94208),
    ("nvidia_modeset", 1261568),
    ("nvidia", 1589248),
    ("r8168", 491520),
    ("nvvrs_pseq_rtc", 16384),
    ("pwm_fan", 24576),
    ("tegra_bpmp_thermal", 16384),
    ("ina3221", 24576),
)


@dataclass(frozen=True)
class Irq:
    number: int
    chip: str
    hwirq: str
    trigger: str
    action: str
    per_cpu: bool = False
    managed: bool = False
    # interrupts per second while the device is busy, for /proc/interrupts
    rate: float = 1.0


# A realistic Orin Nano developer-kit interrupt table: GIC PPIs (per-CPU, refuse to
# move), managed NVMe queue vectors (refuse), and movable SPIs of on-chip devices.
IRQS: tuple[Irq, ...] = (
    Irq(11, "GICv3", "25", "Level", "vgic", per_cpu=True, rate=0.0),
    Irq(12, "GICv3", "30", "Level", "arch_timer", per_cpu=True, rate=250.0),
    Irq(13, "GICv3", "27", "Level", "kvm guest vtimer", per_cpu=True, rate=0.0),
    Irq(14, "GICv3", "23", "Level", "arm-pmu", per_cpu=True, rate=0.0),
    Irq(15, "GICv3", "210", "Level", "tegra-gte", rate=0.1),
    Irq(16, "GICv3", "211", "Level", "tegra-gte", rate=0.1),
    Irq(17, "GICv3", "244", "Level", "bpmp", rate=20.0),
    Irq(18, "GICv3", "34", "Level", "tegra-hsp", rate=5.0),
    Irq(19, "GICv3", "146", "Level", "3160000.i2c", rate=0.5),
    Irq(20, "GICv3", "57", "Level", "c240000.i2c", rate=0.5),
    Irq(21, "GICv3", "58", "Level", "3180000.i2c", rate=0.5),
    Irq(22, "GICv3", "59", "Level", "3190000.i2c", rate=0.2),
    Irq(23, "GICv3", "60", "Level", "31b0000.i2c", rate=0.2),
    Irq(24, "GICv3", "61", "Level", "31c0000.i2c", rate=0.2),
    Irq(25, "GICv3", "44", "Level", "c250000.i2c", rate=0.2),
    Irq(26, "GICv3", "63", "Level", "31e0000.i2c", rate=0.2),
    Irq(27, "GICv3", "112", "Level", "ttyTCU0", rate=0.1),
    Irq(28, "GICv3", "64", "Level", "mmc0", rate=3.0),
    Irq(29, "GICv3", "95", "Level", "3400000.sdhci", rate=1.0),
    Irq(30, "GICv3", "195", "Level", "gpcdma", rate=0.5),
    Irq(31, "GICv3", "196", "Level", "gpcdma", rate=0.5),
    Irq(32, "GICv3", "163", "Level", "xhci-hcd:usb1", rate=15.0),
    Irq(33, "GICv3", "136", "Level", "host1x_syncpt", rate=30.0),
    Irq(34, "GICv3", "137", "Level", "host1x_general", rate=1.0),
    Irq(35, "GICv3", "102", "Level", "17000000.gpu_stall", rate=40.0),
    Irq(36, "GICv3", "103", "Level", "17000000.gpu_nonstall", rate=40.0),
    Irq(37, "GICv3", "121", "Level", "tegra-se", rate=0.1),
    Irq(38, "GICv3", "224", "Level", "soctherm", rate=0.1),
    Irq(39, "GICv3", "186", "Level", "tegra-rtc", rate=0.0),
    Irq(40, "GICv3", "55", "Level", "tegra-pcie-dw", rate=0.1),
    Irq(41, "GICv3", "56", "Level", "tegra-pcie-dw", rate=0.1),
    Irq(42, "GICv3", "227", "Level", "nvdisplay", rate=60.0),
    Irq(43, "GICv3", "230", "Level", "tegra-aconnect", rate=0.0),
    Irq(200, "ITS-MSI", "0", "Edge", "PCIe PME, aerdrv", rate=0.0),
    Irq(201, "ITS-MSI", "524288", "Edge", "eth0", rate=120.0),
    Irq(202, "ITS-MSI", "1048576", "Edge", "nvme0q0", managed=True, rate=0.2),
    Irq(203, "ITS-MSI", "1048577", "Edge", "nvme0q1", managed=True, rate=8.0),
    Irq(204, "ITS-MSI", "1048578", "Edge", "nvme0q2", managed=True, rate=8.0),
    Irq(205, "ITS-MSI", "1048579", "Edge", "nvme0q3", managed=True, rate=8.0),
    Irq(206, "ITS-MSI", "1048580", "Edge", "nvme0q4", managed=True, rate=8.0),
    Irq(207, "ITS-MSI", "1048581", "Edge", "nvme0q5", managed=True, rate=8.0),
    Irq(208, "ITS-MSI", "1048582", "Edge", "nvme0q6", managed=True, rate=8.0),
)

# sysctls the simulated kernel implements: name -> (boot value, minimum, maximum).
SYSCTLS: dict[str, tuple[int, int, int]] = {
    "kernel/sched_rt_runtime_us": (950000, -1, 1000000),
    "kernel/sched_rt_period_us": (1000000, 1, 2147483647),
    "kernel/timer_migration": (1, 0, 1),
    "kernel/hung_task_timeout_secs": (120, 0, 2147483647),
    "kernel/watchdog": (1, 0, 1),
    "kernel/watchdog_thresh": (10, 0, 60),
    "vm/stat_interval": (1, 1, 2147483647),
    "vm/swappiness": (60, 0, 200),
    "vm/dirty_writeback_centisecs": (500, 0, 2147483647),
}

# What L4TLauncher appends to every kernel command line (KernelArgsProtocol->Append,
# L4TLauncher.c r36.5.1 1459-1468): on Orin, the boot profiler's pointers, never root=.
PLATFORM_ARGS = "bl_prof_dataptr=2031616@0x271E10000 bl_prof_ro_ptr=65536@0x271E00000"
# The kernel partition's boot image carries its own command line (flash.sh writes it
# into the Android-style header), the same arguments as NVIDIA's stock APPEND.
KERNEL_PARTITION_CMDLINE = (
    "root=/dev/mmcblk0p1 rw rootwait rootfstype=ext4 mminit_loglevel=4 "
    "console=ttyTCU0,115200 firmware_class.path=/etc/firmware fbcon=map:0 "
    "nospectre_bhb video=efifb:off console=tty0"
)
# The recovery partition boots the recovery initrd, not the root file system.
RECOVERY_CMDLINE = (
    "root=/dev/initrd rw rootwait mminit_loglevel=4 console=ttyTCU0,115200 "
    "firmware_class.path=/etc/firmware fbcon=map:0 nospectre_bhb video=efifb:off console=tty0"
)
# RootfsRetryCountMax: boots of a slot without a successful boot in between before
# L4TLauncher gives up on it (L4TRootfsValidation.c; NVIDIA's documented default is 3).
ROOTFS_RETRY_MAX = 3

ZRAM_DEVICES = 6
ZRAM_SIZE_KB = 635_340

STOCK_RELEASE = "5.15.148-tegra"
RT_RELEASE = "5.15.148-rt-tegra"
