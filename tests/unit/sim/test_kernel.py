"""The simulated kernel's files behave like the kernel's."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from jetson_rt.sim import hardware as hw
from jetson_rt.sim.bootloader import BootRecord
from jetson_rt.sim.kernel import Dir, File, KernelError, Link, Node, SimKernel


def boot(
    kernel: SimKernel, cmdline: str = hw.KERNEL_PARTITION_CMDLINE, realtime: bool = False
) -> None:
    kernel.power_on(
        BootRecord(
            label="primary",
            linux="/boot/Image",
            cmdline=cmdline,
            release=hw.RT_RELEASE if realtime else hw.STOCK_RELEASE,
            version="#1 SMP PREEMPT",
            realtime=realtime,
            modules=["nvgpu"],
            outcome="ok",
        )
    )


@pytest.fixture
def kernel(tmp_path: Path) -> SimKernel:
    k = SimKernel.load("orin-nano-01", tmp_path / "kernel.json")
    boot(k)
    return k


def node(kernel: SimKernel, path: str) -> Node:
    current: Node = kernel.tree()
    for part in path.strip("/").split("/"):
        assert isinstance(current, Dir), path
        current = current.children()[part]
    return current


def read(kernel: SimKernel, path: str) -> str:
    item = node(kernel, path)
    assert isinstance(item, File)
    return item.read()


def write(kernel: SimKernel, path: str, text: str) -> None:
    item = node(kernel, path)
    assert isinstance(item, File) and item.write is not None
    item.write(text)


def refused(kernel: SimKernel, path: str, text: str) -> int:
    with pytest.raises(KernelError) as info:
        write(kernel, path, text)
    return info.value.errno


THP = "sys/kernel/mm/transparent_hugepage"


def test_thp_reads_back_with_brackets_and_refuses_unknown(kernel: SimKernel) -> None:
    assert read(kernel, f"{THP}/enabled") == "[always] madvise never"
    write(kernel, f"{THP}/enabled", "never\n")
    assert read(kernel, f"{THP}/enabled") == "always madvise [never]"
    write(kernel, f"{THP}/defrag", "never")
    assert read(kernel, f"{THP}/defrag") == "always defer defer+madvise madvise [never]"
    assert refused(kernel, f"{THP}/enabled", "sometimes") == errno.EINVAL


def test_per_cpu_and_managed_irqs_refuse_to_move(kernel: SimKernel) -> None:
    arch_timer = next(i for i in hw.IRQS if i.action == "arch_timer").number
    nvme = next(i for i in hw.IRQS if i.action == "nvme0q1").number
    assert refused(kernel, f"proc/irq/{arch_timer}/smp_affinity_list", "0-3") == errno.EIO
    assert refused(kernel, f"proc/irq/{nvme}/smp_affinity_list", "0-3") == errno.EIO


def test_movable_irq_affinity_effective_and_masks(kernel: SimKernel) -> None:
    eth = next(i for i in hw.IRQS if i.action == "eth0").number
    write(kernel, f"proc/irq/{eth}/smp_affinity_list", "2-3")
    assert read(kernel, f"proc/irq/{eth}/smp_affinity_list") == "2-3"
    assert read(kernel, f"proc/irq/{eth}/smp_affinity") == "c"
    assert read(kernel, f"proc/irq/{eth}/effective_affinity_list") == "2"
    write(kernel, f"proc/irq/{eth}/smp_affinity", "3")
    assert read(kernel, f"proc/irq/{eth}/smp_affinity_list") == "0-1"
    for bad in ("4-", "a,b", "5-4", "9"):
        assert refused(kernel, f"proc/irq/{eth}/smp_affinity_list", bad) == errno.EINVAL


def test_irq_counts_follow_the_effective_cpu(kernel: SimKernel) -> None:
    eth = next(i for i in hw.IRQS if i.action == "eth0")

    def counts() -> list[int]:
        row = next(
            line
            for line in read(kernel, "proc/interrupts").splitlines()
            if line.strip().startswith(f"{eth.number}:")
        )
        return [int(v) for v in row.split(":")[1].split()[: hw.CPUS]]

    write(kernel, f"proc/irq/{eth.number}/smp_affinity_list", "5")
    before = counts()
    kernel.state.irq_counted_at -= 10  # ten seconds pass
    grown = [after - was for after, was in zip(counts(), before, strict=True)]
    assert grown[5] >= eth.rate * 9
    assert sum(grown[:5]) == 0


def test_boot_applies_isolation_args_and_resets_volatile_state(kernel: SimKernel) -> None:
    write(kernel, f"{THP}/enabled", "never")
    write(kernel, "proc/sys/kernel/sched_rt_runtime_us", "-1")
    boot(
        kernel,
        hw.KERNEL_PARTITION_CMDLINE
        + " isolcpus=managed_irq,domain,4-5 nohz_full=4-5 irqaffinity=0-3",
        realtime=True,
    )
    assert read(kernel, "sys/devices/system/cpu/isolated") == "4-5"
    assert read(kernel, "sys/devices/system/cpu/nohz_full") == "4-5"
    assert read(kernel, "sys/kernel/realtime") == "1"
    assert read(kernel, "proc/sys/kernel/osrelease") == hw.RT_RELEASE
    assert read(kernel, f"{THP}/enabled") == "[always] madvise never"
    assert read(kernel, "proc/sys/kernel/sched_rt_runtime_us") == "950000"
    eth = next(i for i in hw.IRQS if i.action == "eth0").number
    assert read(kernel, f"proc/irq/{eth}/smp_affinity_list") == "0-3"
    # managed_irq keeps managed queue vectors off the isolated CPUs
    queues = [
        read(kernel, f"proc/irq/{i.number}/effective_affinity_list")
        for i in hw.IRQS
        if i.managed and i.action != "nvme0q0"
    ]
    assert not {"4", "5"} & set(queues)


def test_stock_kernel_has_no_realtime_file_and_null_nohz(kernel: SimKernel) -> None:
    kernel_dir = node(kernel, "sys/kernel")
    assert isinstance(kernel_dir, Dir) and "realtime" not in kernel_dir.children()
    assert read(kernel, "sys/devices/system/cpu/nohz_full") == "(null)"
    assert read(kernel, "sys/devices/system/cpu/isolated") == ""


def test_boot_id_changes_every_boot(kernel: SimKernel) -> None:
    first = read(kernel, "proc/sys/kernel/random/boot_id")
    boot(kernel)
    assert read(kernel, "proc/sys/kernel/random/boot_id") != first
    assert kernel.state.boots == 2


def test_sysctl_ranges(kernel: SimKernel) -> None:
    write(kernel, "proc/sys/kernel/sched_rt_runtime_us", "-1")
    assert read(kernel, "proc/sys/kernel/sched_rt_runtime_us") == "-1"
    assert refused(kernel, "proc/sys/kernel/sched_rt_runtime_us", "2000000") == errno.EINVAL
    assert refused(kernel, "proc/sys/kernel/timer_migration", "2") == errno.EINVAL
    assert refused(kernel, "proc/sys/vm/stat_interval", "ten") == errno.EINVAL


def test_governor_is_per_cluster_policy(kernel: SimKernel) -> None:
    link = node(kernel, "sys/devices/system/cpu/cpu5/cpufreq")
    assert isinstance(link, Link) and link.target == "../cpufreq/policy4"
    write(kernel, "sys/devices/system/cpu/cpufreq/policy4/scaling_governor", "performance")
    assert read(kernel, "sys/devices/system/cpu/cpufreq/policy4/scaling_governor") == "performance"
    assert read(kernel, "sys/devices/system/cpu/cpufreq/policy0/scaling_governor") == "schedutil"
    assert (
        refused(kernel, "sys/devices/system/cpu/cpufreq/policy0/scaling_governor", "turbo")
        == errno.EINVAL
    )


def test_cpu_offline_leaves_irqs_and_online_list(kernel: SimKernel) -> None:
    write(kernel, "sys/devices/system/cpu/cpu5/online", "0")
    assert read(kernel, "sys/devices/system/cpu/online") == "0-4"
    assert read(kernel, "sys/devices/system/cpu/offline") == "5"
    assert "CPU5" not in read(kernel, "proc/interrupts").splitlines()[0]


def test_swap_table(kernel: SimKernel) -> None:
    kernel.swap_command("on /dev/zram0")
    kernel.swap_command("on /dev/zram1")
    assert "/dev/zram1" in read(kernel, "proc/swaps")
    with pytest.raises(KernelError):
        kernel.swap_command("on /dev/zram0")
    kernel.swap_command("off -a")
    assert "zram" not in read(kernel, "proc/swaps")


def test_workqueue_mask_and_state_survives_reload(kernel: SimKernel, tmp_path: Path) -> None:
    write(kernel, "sys/devices/virtual/workqueue/cpumask", "f")
    assert read(kernel, "sys/devices/virtual/workqueue/cpumask") == "f"
    assert refused(kernel, "sys/devices/virtual/workqueue/cpumask", "0") == errno.EINVAL
    again = SimKernel.load("orin-nano-01", tmp_path / "kernel.json")
    assert again.state.workqueue_mask == [0, 1, 2, 3]


def test_sys_module_lists_the_booted_image_modules(kernel: SimKernel) -> None:
    modules = node(kernel, "sys/module")
    assert isinstance(modules, Dir)
    assert list(modules.children()) == ["nvgpu"]
    assert read(kernel, "sys/module/nvgpu/initstate") == "live"
    assert read(kernel, "proc/modules").split()[0] == "nvgpu"


def test_what_jetson_clocks_writes_is_there_and_reset_at_boot(kernel: SimKernel) -> None:
    # jetson_clocks (R36) needs the GPU's of_node, clears railgate, disables cpuidle states
    assert read(kernel, "sys/devices/platform/gpu.0/of_node/compatible") == "nvidia,ga10b\0"
    write(kernel, "sys/devices/platform/gpu.0/railgate_enable", "0")
    idle = "sys/devices/system/cpu/cpu5/cpuidle/state1"
    assert read(kernel, f"{idle}/name") == "c7"
    write(kernel, f"{idle}/disable", "1")
    assert read(kernel, f"{idle}/disable") == "1"
    assert read(kernel, "sys/devices/system/cpu/cpu0/cpuidle/state1/disable") == "0"
    assert refused(kernel, f"{idle}/disable", "2") == errno.EINVAL
    write(kernel, "sys/class/hwmon/hwmon1/pwm1_enable", "1")
    boot(kernel)
    assert read(kernel, "sys/devices/platform/gpu.0/railgate_enable") == "1"
    assert read(kernel, f"{idle}/disable") == "0"
    assert read(kernel, "sys/class/hwmon/hwmon1/pwm1_enable") == "2"


def test_rootfs_retry_count_survives_boots_and_is_verified(kernel: SimKernel) -> None:
    kernel.state.rootfs["retry_count"] = 1
    boot(kernel)
    assert kernel.state.rootfs["retry_count"] == 1  # the loader, not power_on, counts
    kernel.rootfs_command("verify")
    assert kernel.state.rootfs["retry_count"] == hw.ROOTFS_RETRY_MAX
    with pytest.raises(KernelError):
        kernel.rootfs_command("flash")
    assert kernel.describe()["rootfs"]["status"] == "normal"
