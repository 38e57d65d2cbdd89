"""roles/rt_tuning/library/rt_tuning_runtime.py on a fake kernel tree.

The file is both the role's module (WANT_JSON) and the program jetson-rt-tune.service
runs at boot, so it is tested both ways: apply() in-process and main() as a program.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

PROGRAM = Path(__file__).resolve().parents[3] / "roles/rt_tuning/library/rt_tuning_runtime.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rt_tuning_runtime", PROGRAM)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rt = _load()


def _tree(root: Path) -> Path:
    files = {
        "sys/kernel/mm/transparent_hugepage/enabled": "[always] madvise never\n",
        "sys/kernel/mm/transparent_hugepage/defrag": "always defer defer+madvise [madvise] never\n",
        "sys/devices/virtual/workqueue/cpumask": "3f\n",
        "sys/bus/workqueue/devices/writeback/cpumask": "3f\n",
        "proc/sys/kernel/sched_rt_runtime_us": "950000\n",
        "proc/sys/vm/stat_interval": "1\n",
        "sys/devices/system/cpu/cpufreq/policy0/scaling_governor": "schedutil\n",
        "sys/devices/system/cpu/cpufreq/policy4/scaling_governor": "schedutil\n",
        "sys/devices/platform/bus@0/17000000.gpu/power/control": "auto\n",
        "sys/class/hwmon/hwmon0/name": "cpu_thermal\n",
        "sys/class/hwmon/hwmon1/name": "pwmfan\n",
        "sys/class/hwmon/hwmon1/pwm1": "0\n",
        "proc/irq/12/smp_affinity_list": "0-5\n",
        "proc/irq/201/smp_affinity_list": "0-5\n",
        "proc/irq/28/smp_affinity_list": "0-3\n",
        "proc/irq/default_smp_affinity": "3f\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _args(root: Path, **extra: Any) -> dict[str, Any]:
    return {
        "root": str(root),
        "irq_affinity": "0-3",
        "irq_state_file": str(root / "state/irq-unmovable.json"),
        "thp_enabled": "never",
        "thp_defrag": "never",
        "workqueue_cpus": "0-3",
        "sysctls": {"kernel.sched_rt_runtime_us": -1, "vm.stat_interval": 10},
        "governor": "performance",
        "gpu_runtime_pm": "on",
        "fan_pwm": 255,
        **extra,
    }


@pytest.fixture
def per_cpu_irq_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    """IRQ 12 (the arch timer, per-CPU) answers EIO like the kernel."""
    real_write = rt.Runtime.write

    def write(self: Any, rel: str, value: str) -> None:
        if rel == "proc/irq/12/smp_affinity_list":
            raise OSError(errno.EIO, "Input/output error")
        real_write(self, rel, value)

    monkeypatch.setattr(rt.Runtime, "write", write)


def test_check_mode_reports_every_change_and_writes_nothing(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    before = {p: p.read_text() for p in root.rglob("*") if p.is_file()}
    result = rt.apply(_args(root, _ansible_check_mode=True, _ansible_diff=True))
    assert result["changed"] is True
    changed = {c["path"]: (c["before"], c["after"]) for c in result["changes"]}
    assert changed["/sys/kernel/mm/transparent_hugepage/enabled"] == ("always", "never")
    assert changed["/sys/kernel/mm/transparent_hugepage/defrag"] == ("madvise", "never")
    assert changed["/sys/devices/virtual/workqueue/cpumask"] == ("0-5", "0-3")
    assert changed["/proc/sys/kernel/sched_rt_runtime_us"] == ("950000", "-1")
    assert changed["/sys/devices/system/cpu/cpufreq/policy4/scaling_governor"] == (
        "schedutil",
        "performance",
    )
    assert changed["/sys/class/hwmon/hwmon1/pwm1"] == ("0", "255")
    assert changed["/proc/irq/201/smp_affinity_list"] == ("0-5", "0-3")
    assert "/proc/irq/28/smp_affinity_list" not in changed  # already on housekeeping CPUs
    assert "/sys/kernel/mm/transparent_hugepage/enabled: always\n" in result["diff"]["before"]
    assert "/sys/kernel/mm/transparent_hugepage/enabled: never\n" in result["diff"]["after"]
    assert {p: p.read_text() for p in root.rglob("*") if p.is_file()} == before
    # the values before are a stock snapshot undo can apply
    assert result["before"]["thp_enabled"] == "always"
    assert result["before"]["governor"] == {"policy0": "schedutil", "policy4": "schedutil"}
    assert result["before"]["irq_affinity_map"]["201"] == "0-5"


@pytest.mark.usefixtures("per_cpu_irq_refuses")
def test_apply_then_nothing_left_to_change(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    first = rt.apply(_args(root))
    assert first["changed"] is True
    assert first["unmovable_irqs"] == [12]
    assert (root / "sys/devices/virtual/workqueue/cpumask").read_text() == "f"
    assert (root / "proc/irq/201/smp_affinity_list").read_text() == "0-3"
    assert (root / "proc/sys/vm/stat_interval").read_text() == "10"
    assert json.loads((root / "state/irq-unmovable.json").read_text()) == [12]
    second = rt.apply(_args(root))
    assert second["changed"] is False, second["changes"]
    assert second["unmovable_irqs"] == [12]
    # check mode knows the IRQ the kernel refused: it predicts no change for it
    check = rt.apply(_args(root, _ansible_check_mode=True))
    assert check["changes"] == []


def test_restore_from_a_snapshot(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    snapshot = rt.apply(_args(root, _ansible_check_mode=True))["before"]
    rt.apply(_args(root))
    restored = rt.apply(
        {
            "root": str(root),
            "irq_affinity_map": snapshot["irq_affinity_map"],
            "thp_enabled": snapshot["thp_enabled"],
            "workqueue_cpus": snapshot["workqueue_cpus"],
            "sysctls": snapshot["sysctls"],
            "governor": snapshot["governor"],
        }
    )
    assert restored["changed"] is True
    assert (root / "proc/irq/201/smp_affinity_list").read_text() == "0-5"
    assert (root / "sys/kernel/mm/transparent_hugepage/enabled").read_text() == "always"
    assert (root / "sys/devices/virtual/workqueue/cpumask").read_text() == "3f"
    assert (root / "proc/sys/kernel/sched_rt_runtime_us").read_text() == "950000"
    assert (root / "sys/devices/system/cpu/cpufreq/policy0/scaling_governor").read_text() == (
        "schedutil"
    )


def test_missing_optional_devices_warn(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "sys/class/hwmon/hwmon1/name").write_text("other\n")
    (root / "sys/devices/platform/bus@0/17000000.gpu/power/control").unlink()
    result = rt.apply({"root": str(root), "fan_pwm": 255, "gpu_runtime_pm": "on"})
    assert result["changed"] is False
    assert any("fan" in w for w in result["warnings"])
    assert any("GPU" in w for w in result["warnings"])


@pytest.mark.parametrize("text", ["4-", "a,b", "5-4", "1,,2"])
def test_cpu_lists_are_strict(text: str) -> None:
    with pytest.raises(rt.TuningError, match=repr(text)):
        rt.parse_cpulist(text)


def test_runs_as_the_boot_program(tmp_path: Path) -> None:
    root = _tree(tmp_path / "root")
    config = tmp_path / "rt_tuning.json"
    config.write_text(json.dumps(_args(root, irq_affinity=None)))
    done = subprocess.run(
        [sys.executable, str(PROGRAM), str(config)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["changed"] is True
    assert (root / "sys/kernel/mm/transparent_hugepage/enabled").read_text() == "never"
    # a setting that fails is reported; the others are still applied
    config.write_text(
        json.dumps({"root": str(root), "sysctls": {"kernel.nope": 1}, "gpu_runtime_pm": "auto"})
    )
    failed = subprocess.run(
        [sys.executable, str(PROGRAM), str(config)], capture_output=True, text=True, check=False
    )
    assert failed.returncode == 1
    assert "kernel.nope" in json.loads(failed.stdout)["msg"]
    assert (root / "sys/devices/platform/bus@0/17000000.gpu/power/control").read_text() == "auto"
