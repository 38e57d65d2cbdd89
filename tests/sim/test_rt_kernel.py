"""roles/rt_kernel on the simulated fleet: packages from a local NVIDIA-like repository,
the source method (rt_kernel_build on a stand-in kernel tree), artifacts, the boot guard
against a panicking kernel, the play's revert after a failed health check, refusals before
any change, idempotence and the way back to stock.

One fleet of three hosts for the module. The packages scenario (first host), the artifact
scenario (second host) and the refusals (third host) are mostly waiting for reboots and
SSH, so they run side by side (``scenarios``); each test reports its own result.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from tests import kernel_repo
from tests.simfleet import SimFleet, recap, sim_fleet

from jetson_rt import kernel_artifact
from jetson_rt.sim import hardware as hw
from jetson_rt.sim.fleet import Host

pytestmark = pytest.mark.sim

FLEET_NAME = "jrtkern"
EXTLINUX = "/boot/extlinux/extlinux.conf"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    with sim_fleet(FLEET_NAME, 3, tmp_path_factory.mktemp("kern") / "sim") as sim:
        yield sim


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kernel-work")


@pytest.fixture(scope="module")
def repo_url(fleet: SimFleet, work: Path) -> Iterator[str]:
    repo = kernel_repo.build_repo(work)
    # the podman bridge's gateway: the machine as the sim hosts reach it (a loopback
    # address published on the machine is not reachable from inside a host)
    with kernel_repo.serve(repo, kernel_repo.bridge_gateway(fleet.fleet.network)) as url:
        yield url


def play(fleet: SimFleet, host: Host, *extra: str) -> subprocess.CompletedProcess[str]:
    return fleet.playbook(
        "playbooks/kernel.yml",
        "--limit",
        host.name,
        "-e",
        "rt_kernel_enabled=true",
        "-e",
        "rt_kernel_reboot_ok=true",
        *extra,
    )


def flat(text: str) -> str:
    """Output with the YAML callback's line folding undone."""
    return " ".join(text.split())


def boot_log(fleet: SimFleet, host: Host) -> list[str]:
    state = json.loads((fleet.fleet.mount / host.name / "control" / "state").read_text())
    return list(state["boot_log"])


def running(fleet: SimFleet, host: Host) -> tuple[str, str]:
    out = fleet.sudo(host, "cat /proc/sys/kernel/osrelease; cat /sys/kernel/realtime || echo 0")
    release, realtime = out.split()
    return release, realtime


def default_label(fleet: SimFleet, host: Host) -> str:
    return fleet.sudo(host, f"sed -n 's/^DEFAULT //p' {EXTLINUX}").strip()


def fingerprint(fleet: SimFleet, host: Host) -> str:
    return fleet.sudo(
        host,
        f"sha256sum {EXTLINUX}; ls /boot /var/lib/jetson-rt /etc/apt/sources.list.d 2>&1; "
        "dpkg -l 'nvidia-l4t-*' 2>&1 | tail -n +6",
    )


def artifact_args(path: Path, sha256: str, *extra: str) -> list[str]:
    return [
        "-e",
        "rt_kernel_method=artifact",
        "-e",
        f"rt_kernel_artifact={path}",
        "-e",
        f"rt_kernel_artifact_sha256={sha256}",
        *extra,
    ]


def source_args(work: Path, sources: Path, sha256: str) -> list[str]:
    """Method source: rt_kernel_build on the controller, from a stand-in kernel tree."""
    build = {
        "rt_kernel_method": "source",
        "rt_kernel_build_layout": "kernel",
        "rt_kernel_build_sources": str(sources),
        "rt_kernel_build_sources_sha256": sha256,
        "rt_kernel_build_dir": str(work / "kbuild"),
        "rt_kernel_build_cache_dir": str(work / "kcache"),
        "rt_kernel_build_dtbs": False,
        "rt_kernel_build_localversion": "-jetson-rt",
    }
    return ["-e", json.dumps(build)]


RT_MAGIC = "5.15.148-rt-src-jetson-rt SMP preempt_rt mod_unload aarch64"


def test_refused_before_any_change(
    fleet: SimFleet, work: Path, scenarios: dict[str, Future[None]]
) -> None:
    # on the third host, while the two scenarios run on the others
    host = fleet.hosts[2]
    before = fingerprint(fleet, host)

    # the repository release differs from the host's /etc/nv_tegra_release
    result = play(fleet, host, "-e", "rt_kernel_repo_release=r36.3")
    assert result.returncode != 0
    assert "runs L4T 36.4.3 (r36.4) but rt_kernel_repo_release is r36.3" in flat(result.stdout)

    # an artifact whose sha256 is not the one given
    good, _ = kernel_repo.make_artifact(work, "refuse-good")
    wrong = hashlib.sha256(b"something else").hexdigest()
    result = play(fleet, host, *artifact_args(good, wrong))
    assert result.returncode != 0
    assert f"does not match the expected {wrong}" in flat(result.stdout)

    # an artifact built for another L4T release
    other, other_sha = kernel_repo.make_artifact(work, "refuse-r36.3", l4t_release="36.3.0")
    result = play(fleet, host, *artifact_args(other, other_sha))
    assert result.returncode != 0
    assert "was built for L4T 36.3.0" in flat(result.stdout)

    # a source build with a module that lacks preempt_rt: the audit names it
    sources, sha = kernel_repo.make_kernel_sources(
        work, "src-stock-module", {"nvgpu": RT_MAGIC, "r8168": "5.15.148-tegra SMP mod_unload"}
    )
    result = play(fleet, host, *source_args(work, sources, sha))
    assert result.returncode != 0
    assert "1 of 2 modules lack" in flat(result.stdout)
    assert "kernel/r8168.ko: 5.15.148-tegra SMP mod_unload" in flat(result.stdout)

    # an APPEND without root=: L4TLauncher appends only the platform's arguments, so the
    # module refuses to write it (here a candidate APPEND that is ${cbootargs} and isolation)
    refused = fleet.ansible(
        host.name,
        "-b",
        "-m",
        "jetson_rt.fleet.extlinux",
        "-a",
        "label=real-time linux=/boot/Image copy_from=primary "
        "append='${cbootargs} isolcpus=managed_irq,domain,4-5'",
    )
    assert refused.returncode != 0
    assert "has no root=" in flat(refused.stdout)

    assert fingerprint(fleet, host) == before


def unloadable_artifact(work: Path, name: str) -> tuple[Path, str]:
    """An artifact whose Image L4TLauncher cannot load (a copy cut short: not a kernel)."""
    src = work / f"{name}-src"
    release = "5.15.148-rt-jetson-rt"
    kernel = src / "modules" / "lib" / "modules" / release / "kernel"
    kernel.mkdir(parents=True)
    image = src / "Image"
    image.write_bytes(b"MZ\x00\x00")
    config = src / "config"
    config.write_text("CONFIG_PREEMPT_RT=y\n")
    (kernel / "nvgpu.ko").write_text(f"vermagic={release} SMP preempt_rt mod_unload aarch64\n")
    members = kernel_artifact.collect_members(image, config, modules_root=src / "modules")
    manifest = kernel_artifact.build_manifest(
        members, l4t_release=kernel_repo.L4T, kernel_release=release, config=config
    )
    dest = work / f"{name}.tar.gz"
    return dest, kernel_artifact.pack(members, manifest, dest)


@pytest.fixture(scope="module")
def scenarios(fleet: SimFleet, work: Path, repo_url: str) -> Iterator[dict[str, Future[None]]]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {
            "packages": pool.submit(packages_scenario, fleet, fleet.hosts[0], repo_url, work),
            "artifact": pool.submit(artifact_scenario, fleet, fleet.hosts[1], work),
        }


def test_packages_install_idempotent_hold_and_absent(scenarios: dict[str, Future[None]]) -> None:
    scenarios["packages"].result()


def test_artifact_reverts_then_installs(scenarios: dict[str, Future[None]]) -> None:
    scenarios["artifact"].result()


def packages_scenario(fleet: SimFleet, host: Host, repo_url: str, work: Path) -> None:
    """NVIDIA-like packages: installed, held, idempotent, then back to stock; then the
    source method: rt_kernel_build once on the controller, its artifact booted."""
    repo = [
        "-e",
        "rt_kernel_method=packages",
        "-e",
        f"rt_kernel_repo_url={repo_url}",
        "-e",
        "rt_kernel_repo_options=trusted=yes",
    ]
    # check mode previews and changes nothing
    before = fingerprint(fleet, host)
    preview = play(fleet, host, *repo, "--check", "--diff")
    assert preview.returncode == 0, preview.stdout[-4000:]
    assert "would install nvidia-l4t-rt-kernel" in flat(preview.stdout)
    assert fingerprint(fleet, host) == before
    boots = len(boot_log(fleet, host))
    result = play(fleet, host, *repo)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "rt_kernel installed, running 5.15.148-rt-tegra (PREEMPT_RT)" in flat(result.stdout)
    assert running(fleet, host) == (hw.RT_RELEASE, "1")
    assert default_label(fleet, host) == "real-time"
    source = fleet.sudo(host, "cat /etc/apt/sources.list.d/nvidia-l4t-apt-source.list")
    assert f"deb [trusted=yes] {repo_url} r36.4 main" in source
    held = fleet.sudo(host, "apt-mark showhold").split()
    assert set(kernel_repo.ORIN_PACKAGES) <= set(held)
    conf = fleet.sudo(host, f"cat {EXTLINUX}")
    # the known-good entry is untouched; extlinux.conf was backed up before any change
    assert conf.count("LINUX /boot/Image\n") == 1
    assert fleet.sudo(host, f"ls {EXTLINUX}.jetson-rt.orig")
    assert "result=healthy" in fleet.sudo(host, "jetson-rt-boot-guard status")
    log = boot_log(fleet, host)
    assert len(log) == boots + 1 and "label=real-time" in log[-1]

    # already running the requested kernel: nothing changes, no reboot
    again = play(fleet, host, *repo)
    assert again.returncode == 0, again.stdout[-4000:]
    assert recap(again.stdout)[host.name]["changed"] == 0
    assert len(boot_log(fleet, host)) == boots + 1

    # back to stock
    gone = play(fleet, host, *repo, "-e", "rt_kernel_state=absent")
    assert gone.returncode == 0, gone.stdout[-4000:]
    assert running(fleet, host) == (hw.STOCK_RELEASE, "0")
    conf = fleet.sudo(host, f"cat {EXTLINUX}")
    assert "LABEL real-time" not in conf and "DEFAULT primary" in conf
    assert not fleet.sudo(host, "dpkg -l 'nvidia-l4t-rt-*' 2>/dev/null | grep ^ii || true").strip()
    assert "rt-kernel" not in fleet.sudo(
        host, "cat /etc/apt/sources.list.d/nvidia-l4t-apt-source.list"
    )
    assert fleet.ssh(host, "test -e /usr/local/sbin/jetson-rt-boot-guard", check=False).returncode

    sources, sha = kernel_repo.make_kernel_sources(work, "src-good", {"nvgpu": RT_MAGIC})
    built = play(fleet, host, *source_args(work, sources, sha))
    assert built.returncode == 0, built.stdout[-4000:]
    assert "rt_kernel_build: built:" in flat(built.stdout)
    assert running(fleet, host) == ("5.15.148-rt-src-jetson-rt", "1")
    # the same inputs again: the build is a cache hit and the host is left alone
    again = play(fleet, host, *source_args(work, sources, sha))
    assert again.returncode == 0, again.stdout[-4000:]
    assert "cache hit, nothing built" in flat(again.stdout)
    assert recap(again.stdout)[host.name]["changed"] == 0


def artifact_scenario(fleet: SimFleet, host: Host, work: Path) -> None:
    """Artifacts: a health-check failure and a panic reverted, then a good one kept."""

    # a kernel without nvgpu boots but fails the health check: the play reverts it
    # (failure policy continue: the host is reported, not failed)
    broken, broken_sha = kernel_repo.make_artifact(
        work, "no-nvgpu", modules=tuple(m for m, _ in hw.MODULES if m != "nvgpu")
    )
    result = play(
        fleet, host, *artifact_args(broken, broken_sha, "-e", "rt_kernel_failure_policy=continue")
    )
    assert result.returncode == 0, result.stdout[-4000:]
    out = flat(result.stdout)
    assert "REVERTED to" in out and "module nvgpu not loaded" in out
    assert running(fleet, host) == (hw.STOCK_RELEASE, "0")
    assert default_label(fleet, host) == "primary"
    status = json.loads(fleet.sudo(host, "cat /var/lib/jetson-rt/rt_kernel/status.json"))
    assert status["status"] == "reverted"

    # a kernel that panics: L4TLauncher boots it again and again; the boot guard sets
    # DEFAULT back on its second boot, so the third boot is the known-good entry
    panics, panics_sha = kernel_repo.make_artifact(work, "panics", boot="panic")
    boots = len(boot_log(fleet, host))
    result = play(fleet, host, *artifact_args(panics, panics_sha))
    assert result.returncode != 0  # failure policy halt
    assert "the boot guard reverted DEFAULT" in flat(result.stdout)
    log = boot_log(fleet, host)[boots:]
    assert [line.split()[3] for line in log] == ["panic", "panic", "ok"], log
    assert "label=primary" in log[-1]
    assert running(fleet, host) == (hw.STOCK_RELEASE, "0")
    # two failed boots took slot A's retry count to 1; the good boot put it back to 3
    assert "retry_count: 3," in fleet.sudo(host, "nvbootctrl -t rootfs dump-slots-info")

    # a candidate whose image cannot be loaded: L4TLauncher does not try entry 0, it boots
    # the kernel partition's kernel with that kernel's own command line; the role sees a
    # command line without the candidate's arguments, says so and reverts
    unloadable, unloadable_sha = unloadable_artifact(work, "unloadable")
    boots = len(boot_log(fleet, host))
    result = play(
        fleet,
        host,
        *artifact_args(unloadable, unloadable_sha, "-e", "rt_kernel_failure_policy=continue"),
    )
    assert result.returncode == 0, result.stdout[-4000:]
    out = flat(result.stdout)
    assert "REVERTED to" in out and "did not boot entry real-time" in out
    assert "came up on the kernel partition" in out
    log = boot_log(fleet, host)[boots:]
    assert "linux=kernel partition" in log[0] and "is not a bootable image" in log[0], log
    assert "label=primary" in log[-1], log
    assert running(fleet, host) == (hw.STOCK_RELEASE, "0")
    assert default_label(fleet, host) == "primary"

    # a good artifact: installed, checked and kept, with its modules
    good, good_sha = kernel_repo.make_artifact(work, "good")
    result = play(fleet, host, *artifact_args(good, good_sha))
    assert result.returncode == 0, result.stdout[-4000:]
    assert running(fleet, host) == ("5.15.148-rt-jetson-rt", "1")
    assert fleet.sudo(host, "ls /lib/modules/5.15.148-rt-jetson-rt/kernel").split() == ["nvgpu.ko"]
    assert "LINUX /boot/Image.jetson-rt-5.15.148-rt-jetson-rt" in fleet.sudo(
        host, f"cat {EXTLINUX}"
    )
