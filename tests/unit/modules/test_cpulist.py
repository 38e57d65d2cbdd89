"""Kernel CPU lists: module_utils.cpulist and the jetson_rt.fleet.cpulist_* filters."""

from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.jetson_rt.fleet.plugins.filter.cpulist import FilterModule
from ansible_collections.jetson_rt.fleet.plugins.module_utils.cpulist import (
    CpuListError,
    complement,
    format_cpulist,
    format_mask,
    parse_cpulist,
)

REPO = Path(__file__).resolve().parents[3]
COLLECTIONS = REPO / "collections"
FILTERS = FilterModule().filters()


@pytest.mark.parametrize(
    ("text", "cpus"),
    [
        ("0-3,5", [0, 1, 2, 3, 5]),
        ("4,5", [4, 5]),
        ("4-5", [4, 5]),
        ("5,4", [4, 5]),
        ("7", [7]),
        ("0-0", [0]),
        ("4-5\n", [4, 5]),  # a sysfs read keeps its newline
        ("", []),  # /sys/devices/system/cpu/isolated with nothing isolated
        ("\n", []),
        ("4,4", [4]),  # the kernel takes repeats; the result is a set
        ("0-3,2-5", [0, 1, 2, 3, 4, 5]),
        ("011", [11]),
    ],
)
def test_parse_accepts_kernel_cpu_lists(text: str, cpus: list[int]) -> None:
    assert parse_cpulist(text) == cpus


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("4-", "'4-' is an open range"),
        ("-4", "'-4' is negative"),
        ("a,b", "'a' is not a CPU number"),
        ("5-4", "'5-4' is a reversed range; write 4-5"),
        ("1,,2", "empty part"),
        (",1", "empty part"),
        ("1,", "empty part"),
        ("+1", "'+1' is not a CPU number"),
        ("1 ,2", "'1 ' is not a CPU number"),
        ("0-7:2/4", "stride syntax"),
        ("N", "'N' is not a CPU number"),
        ("0x3", "'0x3' is not a CPU number"),
        ("\u0664", "is not a CPU number"),  # a non-ASCII digit int() would take
        ("99999", "out of range"),
    ],
)
def test_parse_refuses_bad_lists_naming_them(text: str, named: str) -> None:
    with pytest.raises(CpuListError) as error:
        parse_cpulist(text)
    assert named in str(error.value)
    assert repr(text) in str(error.value)


def test_parse_takes_ints_and_lists_of_ints_and_strings() -> None:
    assert parse_cpulist(3) == [3]
    assert parse_cpulist([5, 4]) == [4, 5]
    assert parse_cpulist([0, "2-3"]) == [0, 2, 3]
    assert parse_cpulist([]) == []


@pytest.mark.parametrize("value", [True, -1, [1, -2], [1.5], {"a": 1}, b"0-3", None, [None]])
def test_parse_refuses_other_values(value: Any) -> None:
    with pytest.raises(CpuListError, match="CPU"):
        parse_cpulist(value)


def test_parse_with_ncpus_refuses_cpus_the_soc_lacks() -> None:
    assert parse_cpulist("4-5", 6) == [4, 5]
    with pytest.raises(CpuListError, match=r"CPU 6-7 outside 0-5 \(this machine has 6 CPUs\)"):
        parse_cpulist("4-7", 6)
    with pytest.raises(CpuListError, match="number of CPUs 0"):
        parse_cpulist("1", 0)


@pytest.mark.parametrize(
    ("cpus", "text"),
    [
        ([0, 1, 2, 3, 5], "0-3,5"),
        ([4, 5], "4-5"),  # the kernel writes a run of two as a range
        ([5, 4, 0], "0,4-5"),
        ([], ""),
        ([3], "3"),
        ([0, 2, 4, 6], "0,2,4,6"),
        ("5,4,0-3", "0-5"),
    ],
)
def test_format_matches_kernel_output(cpus: Any, text: str) -> None:
    assert format_cpulist(cpus) == text


def test_format_and_parse_round_trip() -> None:
    rng = random.Random(36)
    for _ in range(300):
        cpus = sorted(rng.sample(range(64), rng.randint(0, 20)))
        assert parse_cpulist(format_cpulist(cpus)) == cpus


def test_complement_is_housekeeping() -> None:
    assert complement("4-5", 6) == [0, 1, 2, 3]
    assert complement([], 2) == [0, 1]
    assert complement("0-5", 6) == []
    with pytest.raises(CpuListError, match="outside 0-5"):
        complement("4-6", 6)


@pytest.mark.parametrize(
    ("cpus", "ncpus", "mask"),
    [
        ("0-3", 6, "0f"),  # Orin Nano: 6 CPUs print as two hex digits
        ("4-5", 6, "30"),
        ("0-5", 6, "3f"),
        ("0", 12, "001"),  # AGX Orin: 12 CPUs
        ("0-11", 12, "fff"),
        ("0-3", None, "f"),
        ("0", None, "1"),
        ([], None, "0"),
        ("0,32", None, "1,00000001"),  # 32-bit groups, most significant first
        ("0", 40, "00,00000001"),
        ("0-31", 32, "ffffffff"),
    ],
)
def test_mask_is_the_kernel_cpumask_format(cpus: Any, ncpus: int | None, mask: str) -> None:
    assert format_mask(cpus, ncpus) == mask


def test_filters_registered_and_working() -> None:
    assert set(FILTERS) == {"cpulist_parse", "cpulist_format", "cpulist_complement", "cpulist_mask"}
    assert FILTERS["cpulist_parse"]("0-3,5") == [0, 1, 2, 3, 5]
    assert FILTERS["cpulist_parse"]("4-5", "6") == [4, 5]  # ncpus from a string variable
    assert FILTERS["cpulist_format"]([5, 0, 1, 2, 3]) == "0-3,5"
    assert FILTERS["cpulist_complement"]("4-5", 6) == [0, 1, 2, 3]
    assert FILTERS["cpulist_mask"]("0-3", 6) == "0f"


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("cpulist_parse", ("4-",), "cpulist_parse: CPU list '4-': '4-' is an open range"),
        ("cpulist_parse", ("4-7", 6), "CPU 6-7 outside 0-5"),
        ("cpulist_parse", ("1", "six"), "number of CPUs 'six' is not an integer"),
        ("cpulist_format", ("a",), "cpulist_format: CPU list 'a'"),
        ("cpulist_complement", ("4-5", None), "give the number of CPUs"),
        ("cpulist_complement", ("5-4", 6), "reversed range"),
        ("cpulist_mask", ("x",), "cpulist_mask: CPU list 'x'"),
    ],
)
def test_filters_raise_ansible_filter_error(name: str, args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(AnsibleFilterError) as error:
        FILTERS[name](*args)
    assert message in str(error.value)


def _ansible_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
    )
    return env


def test_filters_by_fqcn_in_a_real_template() -> None:
    """The filters resolve by their FQCN through Ansible's own collection loader."""
    expression = (
        "{{ {'parse': '0-3,5' | jetson_rt.fleet.cpulist_parse,"
        " 'format': [5, 4, 0] | jetson_rt.fleet.cpulist_format,"
        " 'house': '4-5' | jetson_rt.fleet.cpulist_complement(6) | jetson_rt.fleet.cpulist_format,"
        " 'mask': '0-3' | jetson_rt.fleet.cpulist_mask(6)} | to_json }}"
    )
    done = subprocess.run(
        [
            str(REPO / ".venv/bin/ansible"),
            "localhost",
            "-c",
            "local",
            "-m",
            "debug",
            "-a",
            f"msg={expression}",
        ],
        capture_output=True,
        text=True,
        env=_ansible_env(),
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result, _ = json.JSONDecoder().raw_decode(done.stdout[done.stdout.index("{") :])
    msg = result["msg"]
    value = json.loads(msg) if isinstance(msg, str) else msg
    assert value == {"parse": [0, 1, 2, 3, 5], "format": "0,4-5", "house": "0-3", "mask": "0f"}
