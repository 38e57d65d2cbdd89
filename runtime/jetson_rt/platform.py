"""Read-only probes of a Jetson's identity and kernel state.

One implementation serves the runner's health monitor and, through the
``jetson_rt.fleet`` collection's module_utils (a link to this file), the
``jetson_facts`` Ansible module. It is therefore standard-library only and
Python 3.10-compatible. Every probe takes ``root`` so tests can point it at a
captured file tree; a missing file yields ``None`` or an empty value, never an
exception, because a non-Jetson host must be described, not crash the caller.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = "/"

NV_TEGRA_RELEASE = "etc/nv_tegra_release"
NVPMODEL_CONF = "etc/nvpmodel.conf"
NVPMODEL_STATUS = "var/lib/nvpmodel/status"
# The device tree lives in sysfs; /proc/device-tree is a link to it where OF is built in.
DT_BASES = ("sys/firmware/devicetree/base", "proc/device-tree")
CPU_DIR = "sys/devices/system/cpu"
THP_DIR = "sys/kernel/mm/transparent_hugepage"
REALTIME = "sys/kernel/realtime"
OSRELEASE = "proc/sys/kernel/osrelease"
CMDLINE = "proc/cmdline"
MEMINFO = "proc/meminfo"
SWAPS = "proc/swaps"
THERMAL_GLOB = "sys/class/thermal/thermal_zone*"
# R36 (JetPack 6) first, then the class link, then R35 (JetPack 5).
GPU_DEVFREQ_DIRS = (
    "sys/devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu",
    "sys/class/devfreq/17000000.gpu",
    "sys/devices/gpu.0/devfreq/17000000.ga10b",
    "sys/class/devfreq/17000000.ga10b",
)
GPU_POWER_CONTROL_DIRS = (
    "sys/devices/platform/bus@0/17000000.gpu/power",
    "sys/devices/gpu.0/power",
)

# Module part numbers of the Orin family (the p3767 and p3701 SKUs in the
# device-tree compatible string) and their DLA counts. Orin Nano's DLA is fused off.
_SKUS: dict[str, tuple[str, int]] = {
    "p3767-0000": ("Jetson Orin NX 16GB", 2),
    "p3767-0001": ("Jetson Orin NX 8GB", 1),
    "p3767-0003": ("Jetson Orin Nano 8GB", 0),
    "p3767-0004": ("Jetson Orin Nano 4GB", 0),
    "p3767-0005": ("Jetson Orin Nano 8GB (developer kit)", 0),
    "p3701-0000": ("Jetson AGX Orin 32GB", 2),
    "p3701-0004": ("Jetson AGX Orin 32GB", 2),
    "p3701-0005": ("Jetson AGX Orin 64GB", 2),
    "p3701-0008": ("Jetson AGX Orin Industrial", 2),
}
_SOC_FAMILY = {"p3767-0000": "orin_nx", "p3767-0001": "orin_nx", "p3701": "agx_orin"}


def _path(root: str, rel: str) -> Path:
    return Path(root, rel)


def read_text(rel: str, root: str = ROOT) -> str | None:
    """Contents of a file under ``root`` with trailing NULs and whitespace removed."""
    try:
        data = _path(root, rel).read_bytes()
    except OSError:
        return None
    return data.decode("utf-8", "replace").rstrip("\x00\n\r\t ")


def read_int(rel: str, root: str = ROOT) -> int | None:
    text = read_text(rel, root)
    if text is None:
        return None
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return None


def parse_cpulist(text: str | None) -> list[int]:
    """Parse a kernel CPU list (``0-3,5``); ``(null)`` and empty mean none."""
    if not text or text.strip() in ("", "(null)"):
        return []
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if "-" in part:
            low, high = part.split("-", 1)
            cpus.update(range(int(low), int(high) + 1))
        else:
            cpus.add(int(part))
    return sorted(cpus)


def format_cpulist(cpus: list[int] | set[int] | tuple[int, ...]) -> str:
    """Format CPUs as the kernel does (``0-3,5``)."""
    ordered = sorted(set(cpus))
    parts: list[str] = []
    start = prev = None
    for cpu in ordered:
        if start is None:
            start = prev = cpu
        elif prev is not None and cpu == prev + 1:
            prev = cpu
        else:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = prev = cpu
    if start is not None:
        parts.append(str(start) if start == prev else f"{start}-{prev}")
    return ",".join(parts)


# --- identity ---------------------------------------------------------------------------


@dataclass(frozen=True)
class L4TRelease:
    major: int
    revision: str
    board: str | None

    @property
    def release(self) -> str:
        """``36.4.3`` from ``# R36 (release), REVISION: 4.3``."""
        return f"{self.major}.{self.revision}"

    @property
    def jetpack_major(self) -> int:
        return {35: 5, 36: 6}.get(self.major, 0)


_RELEASE_RE = re.compile(r"#\s*R(?P<major>\d+)\s*\(release\),\s*REVISION:\s*(?P<rev>[\d.]+)")


def parse_nv_tegra_release(text: str | None) -> L4TRelease | None:
    if not text:
        return None
    match = _RELEASE_RE.search(text)
    if match is None:
        return None
    board = re.search(r"BOARD:\s*([^,\s]+)", text)
    return L4TRelease(
        major=int(match.group("major")),
        revision=match.group("rev"),
        board=board.group(1) if board else None,
    )


def device_tree(rel: str, root: str = ROOT) -> str | None:
    for base in DT_BASES:
        value = read_text(f"{base}/{rel}", root)
        if value is not None:
            return value
    return None


@dataclass(frozen=True)
class Identity:
    is_jetson: bool
    model: str | None
    compatible: list[str]
    soc: str | None
    module: str | None
    module_sku: str | None
    family: str | None
    l4t: L4TRelease | None
    reason: str = ""


def identity(root: str = ROOT) -> Identity:
    model = device_tree("model", root)
    compat_raw = None
    for base in DT_BASES:
        try:
            compat_raw = _path(root, f"{base}/compatible").read_bytes()
            break
        except OSError:
            continue
    compatible = [c for c in (compat_raw or b"").decode("utf-8", "replace").split("\x00") if c]
    l4t = parse_nv_tegra_release(read_text(NV_TEGRA_RELEASE, root))
    soc = next((c.split(",", 1)[1] for c in compatible if c.startswith("nvidia,tegra")), None)
    sku = None
    for entry in compatible:
        match = re.search(r"(p3767-\d{4}|p3701-\d{4})", entry)
        if match:
            sku = match.group(1)
            break
    module = _SKUS.get(sku, (None, 0))[0] if sku else None
    family = None
    if sku:
        family = _SOC_FAMILY.get(sku) or _SOC_FAMILY.get(sku.split("-")[0]) or "orin_nano"
    reasons = []
    if soc is None:
        reasons.append("no nvidia,tegra* entry in the device-tree compatible string")
    if l4t is None:
        reasons.append(f"/{NV_TEGRA_RELEASE} is missing or unreadable")
    return Identity(
        is_jetson=soc is not None and l4t is not None,
        model=model,
        compatible=compatible,
        soc=soc,
        module=module,
        module_sku=sku,
        family=family,
        l4t=l4t,
        reason="; ".join(reasons),
    )


def dla_count(root: str = ROOT, sku: str | None = None) -> int:
    """DLA cores enabled in the device tree; the SKU table when the tree has no nodes."""
    nodes: list[Path] = []
    for base in DT_BASES:
        nodes = list(_path(root, base).rglob("nvdla*@*"))
        if nodes:
            break
    if nodes:
        return sum(1 for node in nodes if read_text(str(node / "status"), "/") in ("okay", "ok"))
    return _SKUS.get(sku or "", (None, 0))[1]


# --- CPUs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuState:
    cpu: int
    online: bool
    governor: str | None
    cur_khz: int | None
    min_khz: int | None
    max_khz: int | None
    hw_max_khz: int | None


def cpus_present(root: str = ROOT) -> list[int]:
    return parse_cpulist(read_text(f"{CPU_DIR}/present", root))


def cpus_online(root: str = ROOT) -> list[int]:
    return parse_cpulist(read_text(f"{CPU_DIR}/online", root))


def isolated_cpus(root: str = ROOT) -> list[int]:
    return parse_cpulist(read_text(f"{CPU_DIR}/isolated", root))


def nohz_full_cpus(root: str = ROOT) -> list[int]:
    return parse_cpulist(read_text(f"{CPU_DIR}/nohz_full", root))


def cpu_states(root: str = ROOT) -> list[CpuState]:
    online = set(cpus_online(root))
    states = []
    for cpu in cpus_present(root):
        freq = f"{CPU_DIR}/cpu{cpu}/cpufreq"
        states.append(
            CpuState(
                cpu=cpu,
                online=cpu in online,
                governor=read_text(f"{freq}/scaling_governor", root),
                cur_khz=read_int(f"{freq}/scaling_cur_freq", root),
                min_khz=read_int(f"{freq}/scaling_min_freq", root),
                max_khz=read_int(f"{freq}/scaling_max_freq", root),
                hw_max_khz=read_int(f"{freq}/cpuinfo_max_freq", root),
            )
        )
    return states


# --- kernel -----------------------------------------------------------------------------


def kernel_release(root: str = ROOT) -> str | None:
    return read_text(OSRELEASE, root)


def realtime(root: str = ROOT) -> bool:
    return read_text(REALTIME, root) == "1"


def cmdline(root: str = ROOT) -> str:
    return read_text(CMDLINE, root) or ""


def cmdline_args(text: str) -> dict[str, str | None]:
    """``key=value`` arguments of a command line; bare flags map to None; last one wins."""
    args: dict[str, str | None] = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        args[key] = value if sep else None
    return args


def thp_mode(name: str = "enabled", root: str = ROOT) -> str | None:
    """The bracketed choice of a THP file (``always madvise [never]`` -> ``never``)."""
    text = read_text(f"{THP_DIR}/{name}", root)
    if text is None:
        return None
    match = re.search(r"\[([^\]]+)\]", text)
    return match.group(1) if match else text.strip()


def meminfo(root: str = ROOT) -> dict[str, int]:
    """/proc/meminfo in kB."""
    values: dict[str, int] = {}
    for line in (read_text(MEMINFO, root) or "").splitlines():
        key, _colon, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key.strip()] = int(parts[0])
    return values


def swaps(root: str = ROOT) -> list[str]:
    """Active swap devices or files from /proc/swaps."""
    lines = (read_text(SWAPS, root) or "").splitlines()
    return [line.split()[0] for line in lines[1:] if line.strip()]


# --- GPU, thermal -----------------------------------------------------------------------


@dataclass(frozen=True)
class GpuDevfreq:
    path: str
    cur_hz: int | None
    min_hz: int | None
    max_hz: int | None
    available_hz: list[int]
    governor: str | None
    runtime_pm: str | None


def gpu_devfreq(root: str = ROOT) -> GpuDevfreq | None:
    for rel in GPU_DEVFREQ_DIRS:
        if _path(root, rel).is_dir():
            available = [
                int(v)
                for v in (read_text(f"{rel}/available_frequencies", root) or "").split()
                if v.isdigit()
            ]
            control = None
            for power in GPU_POWER_CONTROL_DIRS:
                control = read_text(f"{power}/control", root)
                if control is not None:
                    break
            return GpuDevfreq(
                path="/" + rel,
                cur_hz=read_int(f"{rel}/cur_freq", root),
                min_hz=read_int(f"{rel}/min_freq", root),
                max_hz=read_int(f"{rel}/max_freq", root),
                available_hz=available,
                governor=read_text(f"{rel}/governor", root),
                runtime_pm=control,
            )
    return None


@dataclass(frozen=True)
class ThermalZone:
    name: str
    type: str
    temp_c: float | None
    warn_c: float | None
    trips: dict[str, float] = field(default_factory=dict)


def thermal_zones(root: str = ROOT) -> list[ThermalZone]:
    zones = []
    base = _path(root, THERMAL_GLOB).parent
    found = base.glob(Path(THERMAL_GLOB).name) if base.is_dir() else iter(())
    for path in sorted(found, key=lambda p: int(re.sub(r"\D", "", p.name) or 0)):
        rel = str(path.relative_to(root))
        temp = read_int(f"{rel}/temp", root)
        trips: dict[str, float] = {}
        for index in range(16):
            kind = read_text(f"{rel}/trip_point_{index}_type", root)
            value = read_int(f"{rel}/trip_point_{index}_temp", root)
            if kind is None or value is None:
                break
            trips.setdefault(kind, value / 1000.0)
        # The first passive trip is where the SoC starts throttling: the warning line.
        warn = trips.get("passive", trips.get("hot"))
        zones.append(
            ThermalZone(
                name=path.name,
                type=read_text(f"{rel}/type", root) or path.name,
                temp_c=None if temp is None else temp / 1000.0,
                warn_c=warn,
                trips=trips,
            )
        )
    return zones


# --- nvpmodel ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerMode:
    id: int
    name: str
    cpus_offline: list[int]


@dataclass(frozen=True)
class NvpmodelConf:
    modes: list[PowerMode]
    default: int | None

    def by_name(self, name: str) -> PowerMode | None:
        return next((m for m in self.modes if m.name == name), None)

    def by_id(self, mode_id: int) -> PowerMode | None:
        return next((m for m in self.modes if m.id == mode_id), None)


_MODE_RE = re.compile(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=(\S+)\s*>")
_DEFAULT_RE = re.compile(r"<\s*PM_CONFIG\s+DEFAULT=(\d+)\s*>")
_CORE_OFF_RE = re.compile(r"^\s*CPU_ONLINE\s+CORE_(\d+)\s+0\s*$")


def parse_nvpmodel_conf(text: str | None) -> NvpmodelConf:
    modes: list[PowerMode] = []
    default = None
    current: tuple[int, str] | None = None
    offline: list[int] = []
    for line in (text or "").splitlines():
        if line.lstrip().startswith("#"):
            continue
        if match := _MODE_RE.search(line):
            if current is not None:
                modes.append(PowerMode(current[0], current[1], offline))
            current, offline = (int(match.group(1)), match.group(2)), []
        elif match := _DEFAULT_RE.search(line):
            default = int(match.group(1))
        elif current is not None and (match := _CORE_OFF_RE.match(line)):
            offline.append(int(match.group(1)))
    if current is not None:
        modes.append(PowerMode(current[0], current[1], offline))
    return NvpmodelConf(modes=modes, default=default)


def parse_nvpmodel_query(text: str) -> tuple[str | None, int | None]:
    """``nvpmodel -q`` prints ``NV Power Mode: 15W`` then the id."""
    name = None
    mode_id = None
    for line in text.splitlines():
        if line.startswith("NV Power Mode:"):
            name = line.split(":", 1)[1].strip()
        elif line.strip().isdigit():
            mode_id = int(line.strip())
    return name, mode_id


def nvpmodel_status(root: str = ROOT) -> int | None:
    """The mode id nvpmodel recorded (``pmode:0000 ...``)."""
    match = re.search(r"pmode:(\d+)", read_text(NVPMODEL_STATUS, root) or "")
    return int(match.group(1)) if match else None


def as_dict(value: Any) -> Any:
    """Dataclasses to plain data for JSON and Ansible."""
    return asdict(value)
