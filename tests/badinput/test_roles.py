"""Bad input to the roles: each case runs one role, as a user does, with one bad variable
against a simulated host, and asserts that the play failed with a message naming the
variable and its value, and that nothing on the host changed (boot menu, apt sources,
sysctl and systemd folders, the roles' state folders, installed packages) nor in the
controller folders the role writes to.

One host (fleet ``jrtbad``), created once for the module. Each case is its own failing
play; plays are short (no fact gathering, pipelining from ansible.cfg) because the roles
refuse before their first change. Add a case by appending a :class:`RoleCase`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests import kernel_repo
from tests.badinput.harness import snapshot
from tests.simfleet import REPO, SimFleet, recap, sim_fleet

pytestmark = pytest.mark.sim

FLEET_NAME = "jrtbad"
# Plays in flight at once against the one host.
PARALLEL_PLAYS = 4

# What the roles change on a host; a refusal leaves all of it as it was.
WATCHED = (
    "/boot",
    "/etc/apt/sources.list.d",
    "/etc/apt/preferences.d",
    "/etc/sysctl.d",
    "/etc/systemd/system",
    "/etc/security/limits.d",
    "/etc/jetson-rt",
    "/etc/fstab",
    "/etc/nvpmodel.conf",
    "/var/lib/jetson-rt",
    "/var/tmp/jetson-rt-validate",
    "/opt/jetson-rt",
    "/usr/local/sbin",
    "/usr/local/libexec/jetson-rt",
)
HOST_STATE = (
    f"for p in {' '.join(WATCHED)}; do "
    '[ -e "$p" ] || continue; '
    'find "$p" -xdev -printf "%p %y %m %s\\n"; '
    'find "$p" -xdev -type f -exec sha256sum {} +; '
    "done | sort; "
    "dpkg-query -W -f '${Package} ${Version} ${Status}\\n' | sha256sum; "
    "apt-mark showhold; ls /var/lib/apt/lists"
)


@dataclass(frozen=True)
class RoleCase:
    """One bad variable for one role. ``extra`` holds the variables of the case (the bad
    one and whatever it needs to be reached); ``{repo}``, ``{artifact}``, ``{artifact_sha}``
    and ``{work}`` in string values are filled in. ``expect`` is a regular expression
    the play's output must match (searched with the YAML callback's folding undone)."""

    id: str
    role: str
    extra: dict[str, Any]
    expect: str
    tags: tuple[str, ...] = field(default=())


def _tuning(case_id: str, extra: dict[str, Any], expect: str) -> RoleCase:
    return RoleCase(case_id, "rt_tuning", extra, expect)


def _kernel(case_id: str, extra: dict[str, Any], expect: str) -> RoleCase:
    return RoleCase(case_id, "rt_kernel", extra, expect)


def _runtime(case_id: str, extra: dict[str, Any], expect: str) -> RoleCase:
    return RoleCase(case_id, "inference_runtime", extra, expect)


def _validate(case_id: str, extra: dict[str, Any], expect: str) -> RoleCase:
    return RoleCase(
        case_id, "rt_validate", {"rt_validate_results_dir": "{work}/results", **extra}, expect
    )


PACKAGES = {"rt_kernel_method": "packages", "rt_kernel_repo_url": "{repo}"}
ARTIFACT = {"rt_kernel_method": "artifact"}
SOURCE = {
    "rt_kernel_method": "source",
    "rt_kernel_build_layout": "kernel",
    "rt_kernel_build_dir": "{work}/kbuild",
    "rt_kernel_build_cache_dir": "{work}/kcache",
    "rt_kernel_build_sources": "{work}/sources.tar.gz",
    "rt_kernel_build_sources_sha256": "0" * 64,
}
MODEL = {
    "name": "det",
    "version": "1",
    "source": "{work}/model.onnx",
    "sha256": "0" * 64,
    "deadline_ms": 50,
}

CASES: list[RoleCase] = [
    # --- rt_tuning: CPU lists, CPU 0, the boot entry, power mode, numbers ---------------
    _tuning(
        "tuning-iso-cpu0",
        {"rt_tuning_isolated_cpus": "0-1"},
        r'rt_tuning_isolated_cpus="0-1" isolates CPU 0',
    ),
    _tuning(
        "tuning-iso-cpu0-alone",
        {"rt_tuning_isolated_cpus": "0"},
        r'rt_tuning_isolated_cpus="0" isolates CPU 0',
    ),
    _tuning(
        "tuning-iso-open-range",
        {"rt_tuning_isolated_cpus": "4-"},
        r'rt_tuning_isolated_cpus="4-" is not a CPU list',
    ),
    _tuning(
        "tuning-iso-reversed",
        {"rt_tuning_isolated_cpus": "5-4"},
        r'rt_tuning_isolated_cpus="5-4" has the reversed range',
    ),
    _tuning(
        "tuning-iso-beyond-soc",
        {"rt_tuning_isolated_cpus": "4-9"},
        r'rt_tuning_isolated_cpus="4-9" names CPU\(s\) 6,7,8,9',
    ),
    _tuning(
        "tuning-iso-letters",
        {"rt_tuning_isolated_cpus": "four"},
        r'rt_tuning_isolated_cpus="four" is not a CPU list',
    ),
    _tuning(
        "tuning-iso-empty", {"rt_tuning_isolated_cpus": " "}, r"rt_tuning_isolated_cpus is empty"
    ),
    _tuning(
        "tuning-hk-overlap",
        {"rt_tuning_isolated_cpus": "4-5", "rt_tuning_housekeeping_cpus": "0-4"},
        r'rt_tuning_housekeeping_cpus="0-4" overlap on CPU\(s\) 4',
    ),
    _tuning(
        "tuning-hk-stride",
        {"rt_tuning_housekeeping_cpus": "0-3:2/4"},
        r'rt_tuning_housekeeping_cpus="0-3:2/4" is not a CPU list',
    ),
    _tuning(
        "tuning-args-cma",
        {"rt_tuning_kernel_args": {"cma": "64M"}},
        r'rt_tuning_kernel_args=\{"cma": "64M"\}: remove cma=',
    ),
    _tuning(
        "tuning-args-isolcpus",
        {"rt_tuning_kernel_args": {"isolcpus": "4-5"}},
        r'rt_tuning_kernel_args=\{"isolcpus": "4-5"\}: isolcpus',
    ),
    _tuning(
        "tuning-power-mode",
        {"rt_tuning_power_mode": "TURBO"},
        r'rt_tuning_power_mode="TURBO" is not a power mode',
    ),
    _tuning(
        "tuning-rtprio", {"rt_tuning_rtprio": 120}, r"rt_tuning_rtprio=120 is out of range: 0-99"
    ),
    _tuning(
        "tuning-memlock",
        {"rt_tuning_memlock": "lots"},
        r'rt_tuning_memlock="lots" is out of range: KiB',
    ),
    _tuning(
        "tuning-sysctl-name",
        {"rt_tuning_sysctls": {"Kernel Watchdog": 0}},
        r"not sysctl names .*Kernel Watchdog",
    ),
    _tuning(
        "tuning-boot-label",
        {"rt_tuning_boot_label": "nosuch"},
        r'rt_tuning_boot_label="nosuch" resolves to "nosuch", which is not an entry',
    ),
    _tuning(
        "tuning-extlinux-missing",
        {"rt_tuning_extlinux_path": "/boot/extlinux/none.conf"},
        r"/boot/extlinux/none.conf: no such file",
    ),
    _tuning("tuning-thp-choice", {"rt_tuning_thp": "sometimes"}, r"rt_tuning_thp.*sometimes"),
    # --- rt_kernel: labels, CPU lists, numbers, the repository, the artifact ------------
    _kernel(
        "kernel-candidate-label",
        {"rt_kernel_candidate_label": "real time"},
        r'rt_kernel_candidate_label="real time": an extlinux.conf label',
    ),
    _kernel(
        "kernel-candidate-is-default",
        {"rt_kernel_candidate_label": "primary"},
        r'rt_kernel_candidate_label="primary": it is the entry DEFAULT boots',
    ),
    _kernel(
        "kernel-candidate-is-known-good",
        {"rt_kernel_candidate_label": "primary", "rt_kernel_known_good_label": "primary"},
        r'rt_kernel_candidate_label="primary": it is the known-good entry',
    ),
    _kernel(
        "kernel-known-good-missing",
        {"rt_kernel_known_good_label": "stock"},
        r'rt_kernel_known_good_label="stock": no such entry',
    ),
    _kernel(
        "kernel-iso-cpu0",
        {"rt_kernel_isolated_cpus": "0,4"},
        r'rt_kernel_isolated_cpus="0,4": CPU 0 cannot be isolated',
    ),
    _kernel(
        "kernel-iso-open-range",
        {"rt_kernel_isolated_cpus": "4-"},
        r"rt_kernel_isolated_cpus=\"4-\": .*open range",
    ),
    _kernel(
        "kernel-iso-beyond-soc",
        {"rt_kernel_isolated_cpus": "4-7"},
        r'rt_kernel_isolated_cpus="4-7": .*CPU 6-7 outside 0-5',
    ),
    _kernel(
        "kernel-hk-overlap",
        {"rt_kernel_isolated_cpus": "4-5", "rt_kernel_housekeeping_cpus": "0-5"},
        r'rt_kernel_housekeeping_cpus="0-5": it overlaps rt_kernel_isolated_cpus="4-5" '
        r"on CPU\(s\) 4,5",
    ),
    _kernel(
        "kernel-isolcpus-flag",
        {"rt_kernel_isolcpus_flags": ["domain", "nohz_full"]},
        r"rt_kernel_isolcpus_flags=\[\"domain\", \"nohz_full\"\]",
    ),
    _kernel(
        "kernel-args-cma",
        {"rt_kernel_kernel_args": {"CMA": "256M"}},
        r'rt_kernel_kernel_args=\{"CMA": "256M"\}: a CMA size',
    ),
    _kernel(
        "kernel-boot-attempts",
        {"rt_kernel_boot_attempts": 0},
        r"rt_kernel_boot_attempts=0: the boot guard counts",
    ),
    _kernel(
        "kernel-boot-attempts-past-retry-count",
        {"rt_kernel_boot_attempts": 3},
        r"rt_kernel_boot_attempts=3: .*recovery kernel",
    ),
    _kernel(
        "kernel-boot-timeout",
        {"rt_kernel_boot_timeout": 5},
        r"rt_kernel_boot_timeout=5: a Jetson needs",
    ),
    _kernel(
        "kernel-repo-url-scheme",
        {**PACKAGES, "rt_kernel_repo_url": "ftp://mirror/rt"},
        r'rt_kernel_repo_url="ftp://mirror/rt": an apt repository URL',
    ),
    _kernel(
        "kernel-repo-release-form",
        {**PACKAGES, "rt_kernel_repo_release": "36.4"},
        r'rt_kernel_repo_release="36.4": NVIDIA.s releases',
    ),
    _kernel(
        "kernel-repo-release-other",
        {**PACKAGES, "rt_kernel_repo_release": "r36.3"},
        r"rt_kernel_repo_release is r36.3",
    ),
    _kernel(
        "kernel-repo-release-absent",
        {**PACKAGES, "rt_kernel_repo_release": "r36.9", "rt_kernel_force": True},
        r'rt_kernel_repo_release="r36.9": .*dists/r36.9/Release cannot be read',
    ),
    _kernel(
        "kernel-repo-empty",
        {**PACKAGES, "rt_kernel_repo_url": "{repo}/nothing-here"},
        r'rt_kernel_repo_url=".*/nothing-here": .*dists/r36.4/Release cannot be read',
    ),
    _kernel(
        "kernel-package-absent",
        {**PACKAGES, "rt_kernel_packages": ["nvidia-l4t-rt-kernel", "nvidia-l4t-rt-kernel-extra"]},
        r'rt_kernel_packages="nvidia-l4t-rt-kernel-extra": nvidia-l4t-rt-kernel-extra is not in',
    ),
    _kernel(
        "kernel-package-version-absent",
        {**PACKAGES, "rt_kernel_packages": ["nvidia-l4t-rt-kernel=5.15.148-rt-tegra-36.4.0"]},
        r'rt_kernel_packages="nvidia-l4t-rt-kernel=5.15.148-rt-tegra-36.4.0": '
        r".*36.4.0 is not in .* it has 5.15.148-rt-tegra-36.4.3",
    ),
    _kernel(
        "kernel-artifact-missing",
        {**ARTIFACT, "rt_kernel_artifact_sha256": "0" * 64},
        r'rt_kernel_artifact="": method artifact needs',
    ),
    _kernel(
        "kernel-artifact-sha-form",
        {**ARTIFACT, "rt_kernel_artifact": "{artifact}", "rt_kernel_artifact_sha256": "abc"},
        r'rt_kernel_artifact_sha256="abc": the artifact.s sha256',
    ),
    _kernel(
        "kernel-artifact-sha-wrong",
        {**ARTIFACT, "rt_kernel_artifact": "{artifact}", "rt_kernel_artifact_sha256": "1" * 64},
        r'rt_kernel_artifact_sha256="1{64}": .*does not match the expected 1{64}',
    ),
    _kernel(
        "kernel-artifact-no-file",
        {
            **ARTIFACT,
            "rt_kernel_artifact": "{work}/none.tar.gz",
            "rt_kernel_artifact_sha256": "{artifact_sha}",
        },
        r'rt_kernel_artifact=".*/none.tar.gz": .*no such artifact',
    ),
    # --- rt_kernel_build (through rt_kernel's source method) ------------------------------
    _kernel(
        "build-sources-sha",
        {**SOURCE, "rt_kernel_build_sources_sha256": "xyz"},
        r'rt_kernel_build_sources_sha256="xyz": the sources. sha256',
    ),
    _kernel(
        "build-l4t-release",
        {**SOURCE, "rt_kernel_build_l4t_release": "r36"},
        r'rt_kernel_build_l4t_release="r36": an L4T release',
    ),
    _kernel(
        "build-preempt-rt-off",
        {**SOURCE, "rt_kernel_build_config": {"CONFIG_PREEMPT_RT": "n"}},
        r'rt_kernel_build_config.CONFIG_PREEMPT_RT="n": this role builds',
    ),
    _kernel(
        "build-dir-root",
        {**SOURCE, "rt_kernel_build_dir": "/"},
        r'rt_kernel_build_dir="/": an absolute folder',
    ),
    # --- inference_runtime ---------------------------------------------------------------
    _runtime(
        "runtime-cpus-beyond-soc",
        {"inference_runtime_cpus": "4-8", "inference_runtime_models": [MODEL]},
        r'inference_runtime_cpus="4-8": CPU list .* outside 0-5',
    ),
    _runtime(
        "runtime-cpus-syntax",
        {"inference_runtime_cpus": "4,,5", "inference_runtime_models": [MODEL]},
        r'inference_runtime_cpus="4,,5": .*empty part',
    ),
    _runtime(
        "runtime-backend",
        {"inference_runtime_backend": "tflite"},
        r"inference_runtime_backend.*tflite",
    ),
    # --- rt_validate ---------------------------------------------------------------------
    _validate(
        "validate-profile",
        {"rt_validate_profile": "weekly"},
        r'rt_validate_profile="weekly": no such profile',
    ),
    _validate(
        "validate-run-id",
        {"rt_validate_run_id": "../escape"},
        r'rt_validate_run_id="../escape": the run folder',
    ),
    _validate(
        "validate-iso-cpu0",
        {"rt_validate_isolated_cpus": "0-1"},
        r'rt_validate_isolated_cpus="0-1": CPU 0 is never isolated',
    ),
    _validate(
        "validate-interval",
        {"rt_validate_cyclictest_overrides": {"interval_us": 0}},
        r"rt_validate_profiles.quick.interval_us=0: cyclictest",
    ),
    _validate(
        "validate-cpus-syntax",
        {"rt_validate_cyclictest_cpus": "4-x"},
        r'rt_validate_cyclictest_cpus="4-x": CPU list',
    ),
]

PLAYBOOK = """\
- name: Bad input | {role}
  hosts: all
  gather_facts: false
  become: true
  roles:
    - role: {role}
"""


def flat(text: str) -> str:
    """Output with the YAML callback's line folding undone."""
    return " ".join(text.split())


def fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, text in names.items():
            value = value.replace("{" + name + "}", text)
        return value
    if isinstance(value, list):
        return [fill(item, names) for item in value]
    if isinstance(value, dict):
        return {key: fill(item, names) for key, item in value.items()}
    return value


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    with sim_fleet(FLEET_NAME, 1, tmp_path_factory.mktemp("badroles") / "sim") as sim:
        yield sim


@pytest.fixture(scope="module")
def names(fleet: SimFleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    work = tmp_path_factory.mktemp("badroles-work")
    repo = kernel_repo.build_repo(work)
    artifact, artifact_sha = kernel_repo.make_artifact(work, "bad-input")
    (work / "model.onnx").write_bytes(b"not read: the role refuses before")
    with kernel_repo.serve(repo, kernel_repo.bridge_gateway(fleet.fleet.network)) as url:
        yield {
            "repo": url,
            "artifact": str(artifact),
            "artifact_sha": artifact_sha,
            "work": str(work / "case"),
        }


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    output: str
    host_before: str
    host_after: str
    work_before: dict[str, str]
    work_after: dict[str, str]


def run_case(case: RoleCase, fleet: SimFleet, names: dict[str, str], folder: Path) -> Outcome:
    """The case's play, with the host's and the controller folder's state around it."""
    folder.mkdir(parents=True)
    work = Path(names["work"])
    playbook = folder / "play.yml"
    playbook.write_text(PLAYBOOK.format(role=case.role))
    extra = folder / "extra.json"
    extra.write_text(json.dumps(fill(case.extra, names)))
    host = fleet.hosts[0]
    host_before = fleet.sudo(host, HOST_STATE)
    work_before = snapshot(work)
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            str(fleet.inventory),
            str(playbook),
            "-e",
            f"@{extra}",
        ],
        capture_output=True,
        text=True,
        # an stdin of its own: ansible refuses to start when another process (ssh) has made
        # a shared stdin non-blocking
        stdin=subprocess.DEVNULL,
        # facts in memory: plays running side by side must not share the fact cache file
        env={**fleet.env(), "ANSIBLE_CACHE_PLUGIN": "memory"},
        cwd=REPO,
        timeout=300,
        check=False,
    )
    return Outcome(
        returncode=result.returncode,
        stdout=result.stdout,
        output=flat(result.stdout + result.stderr),
        host_before=host_before,
        host_after=fleet.sudo(host, HOST_STATE),
        work_before=work_before,
        work_after=snapshot(work),
    )


@pytest.fixture(scope="module")
def outcomes(
    fleet: SimFleet, names: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Outcome]:
    """Every case, a few plays at a time: a play spends most of its time waiting on SSH.
    Each case still compares the state before and after its own play, so a case that
    changed something cannot pass (at worst a case running beside it fails too)."""
    Path(names["work"]).mkdir(parents=True, exist_ok=True)
    plays = tmp_path_factory.mktemp("badroles-plays")
    with ThreadPoolExecutor(max_workers=PARALLEL_PLAYS) as pool:
        futures = {
            case.id: pool.submit(run_case, case, fleet, names, plays / case.id) for case in CASES
        }
        return {case_id: future.result() for case_id, future in futures.items()}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_role_refuses(case: RoleCase, fleet: SimFleet, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[case.id]
    output = outcome.output
    assert outcome.returncode != 0, output
    rows = recap(outcome.stdout)
    assert fleet.hosts[0].name in rows, output
    assert rows[fleet.hosts[0].name]["failed"] == 1, output
    assert re.search(case.expect, output), f"{case.expect!r} not in\n{output}"
    assert "Traceback" not in output, output
    assert outcome.host_after == outcome.host_before, f"{case.id} changed the host\n{output}"
    assert outcome.work_after == outcome.work_before, f"{case.id} wrote on the controller\n{output}"


def test_cases_are_unique_and_enough() -> None:
    seen = [case.id for case in CASES]
    assert len(seen) == len(set(seen))
    assert len(CASES) >= 30
    # every role's refusals are in the table
    assert {case.role for case in CASES} == {
        "rt_tuning",
        "rt_kernel",
        "inference_runtime",
        "rt_validate",
    }
