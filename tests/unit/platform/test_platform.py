"""jetson_rt.platform on captured file trees of real devices."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.jetson_trees import NVPMODEL_CONF, agx_orin_r35, orin_nano_r36, x86_server

from jetson_rt import platform as jp


def test_orin_nano_r36_identity(tmp_path: Path) -> None:
    root = str(orin_nano_r36(tmp_path))
    ident = jp.identity(root)
    assert ident.is_jetson
    assert ident.soc == "tegra234"
    assert ident.module_sku == "p3767-0005"
    assert ident.family == "orin_nano"
    assert ident.l4t is not None
    assert ident.l4t.release == "36.4.3"
    assert ident.l4t.jetpack_major == 6
    assert ident.model == "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super"
    # Orin Nano's DLA nodes exist in the device tree but are disabled (fused off).
    assert jp.dla_count(root, ident.module_sku) == 0


def test_orin_nano_r36_kernel_and_cpus(tmp_path: Path) -> None:
    root = str(orin_nano_r36(tmp_path))
    assert jp.kernel_release(root) == "5.15.148-rt-tegra"
    assert jp.realtime(root)
    assert jp.isolated_cpus(root) == [4, 5]
    assert jp.nohz_full_cpus(root) == [4, 5]
    assert jp.cmdline_args(jp.cmdline(root))["isolcpus"] == "managed_irq,domain,4-5"
    assert jp.cmdline_args(jp.cmdline(root))["quiet"] is None
    assert jp.thp_mode("enabled", root) == "never"
    assert jp.thp_mode("defrag", root) == "never"
    states = jp.cpu_states(root)
    assert [s.governor for s in states] == ["performance"] * 6
    assert jp.swaps(root) == []
    assert jp.meminfo(root)["MemAvailable"] == 6123456


def test_stock_kernel_has_no_realtime_file(tmp_path: Path) -> None:
    root = str(orin_nano_r36(tmp_path, realtime=False))
    assert not jp.realtime(root)
    assert jp.kernel_release(root) == "5.15.148-tegra"


def test_gpu_devfreq_r36_path_and_runtime_pm(tmp_path: Path) -> None:
    gpu = jp.gpu_devfreq(str(orin_nano_r36(tmp_path)))
    assert gpu is not None
    assert gpu.path == "/sys/devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu"
    assert (gpu.cur_hz, gpu.max_hz) == (1020000000, 1020000000)
    assert gpu.available_hz == [306000000, 612000000, 1020000000]
    assert gpu.runtime_pm == "on"


def test_r35_fallbacks(tmp_path: Path) -> None:
    root = str(agx_orin_r35(tmp_path))
    ident = jp.identity(root)
    assert ident.is_jetson and ident.family == "agx_orin"
    assert ident.l4t is not None and ident.l4t.release == "35.4.1"
    assert ident.l4t.jetpack_major == 5
    assert jp.dla_count(root, ident.module_sku) == 2
    gpu = jp.gpu_devfreq(root)
    assert gpu is not None and gpu.path.endswith("17000000.ga10b")
    # nohz_full reads "(null)" when the kernel was booted without it.
    assert jp.nohz_full_cpus(root) == []
    assert jp.isolated_cpus(root) == []
    assert jp.swaps(root) == ["/dev/zram0"]


def test_non_jetson_says_why(tmp_path: Path) -> None:
    ident = jp.identity(str(x86_server(tmp_path)))
    assert not ident.is_jetson
    assert "nvidia,tegra" in ident.reason
    assert "nv_tegra_release" in ident.reason
    assert jp.gpu_devfreq(str(tmp_path)) is None
    assert jp.thermal_zones(str(tmp_path)) == []


def test_thermal_zones_and_warning_trip(tmp_path: Path) -> None:
    zones = jp.thermal_zones(str(orin_nano_r36(tmp_path)))
    assert [(z.type, z.temp_c, z.warn_c) for z in zones] == [
        ("cpu-thermal", 51.25, 99.0),
        ("gpu-thermal", 49.5, 99.0),
    ]
    assert zones[0].trips == {"passive": 99.0, "critical": 104.5}


def test_nvpmodel_conf_modes_default_and_offline_cores() -> None:
    conf = jp.parse_nvpmodel_conf(NVPMODEL_CONF)
    assert [(m.id, m.name) for m in conf.modes] == [
        (0, "15W"),
        (1, "25W"),
        (2, "MAXN_SUPER"),
        (3, "7W"),
    ]
    assert conf.default == 2
    mode = conf.by_name("7W")
    assert mode is not None and mode.cpus_offline == [4, 5]
    assert conf.by_name("MAXN") is None


def test_nvpmodel_query_output() -> None:
    assert jp.parse_nvpmodel_query("NV Power Mode: MAXN_SUPER\n2\n") == ("MAXN_SUPER", 2)
    assert jp.parse_nvpmodel_query("garbage") == (None, None)


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("0-3,5", [0, 1, 2, 3, 5]), ("4", [4]), ("", []), ("(null)", []), ("1,0-1", [0, 1])],
)
def test_cpulist_round_trip(text: str, cpus: list[int]) -> None:
    assert jp.parse_cpulist(text) == cpus
    assert jp.parse_cpulist(jp.format_cpulist(cpus)) == cpus


def test_format_cpulist_is_compact() -> None:
    assert jp.format_cpulist([5, 0, 1, 2, 4]) == "0-2,4-5"
    assert jp.format_cpulist([]) == ""


def test_nv_tegra_release_rejects_other_text() -> None:
    assert jp.parse_nv_tegra_release("Ubuntu 22.04") is None
    assert jp.parse_nv_tegra_release(None) is None
