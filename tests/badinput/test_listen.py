"""Bad input to ``jetson-rt listen``: refused with one line before any session opens."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.badinput.harness import Case, check_refused, ids


def case(id: str, argv: tuple[str, ...], expect: str) -> Case:
    return Case(id=id, argv=("listen", *argv), expect=expect, exit_code=2, timeout_s=60)


CASES = [
    case(
        "connect-not-an-endpoint", ("--connect", "10.0.0.2"), r"--connect.*<protocol>/<host>:<port>"
    ),
    case(
        "listen-bad-protocol", ("--listen", "http/0.0.0.0:80"), r"--listen.*protocol must be one of"
    ),
    case("count-zero", ("--count", "0", "--duration", "1"), r"--count must be at least 1"),
    case("duration-negative", ("--duration", "-1"), r"--duration must be a positive number"),
    case("per-key-without-expect", ("--per-key", "3", "--duration", "1"), r"--per-key needs"),
    case(
        "record-into-missing-folder",
        ("--record", "{dir}/missing/out.jsonl", "--duration", "1"),
        r"--record .* name a file in an existing folder",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_refused(case: Case, tmp_path: Path) -> None:
    check_refused(case, tmp_path / "case")
