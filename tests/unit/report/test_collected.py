"""``jetson-rt report --collected``: the fleet report from the folders boards upload in
pull mode, with boards whose newest result is too old marked stale."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from tests.badinput.harness import run_cli
from tests.unit.report.runs import RunBuilder

from jetson_rt.errors import ReportError
from jetson_rt.report.collected import assemble, parse_age

NOW = datetime(2026, 12, 7, 20, 0, tzinfo=timezone.utc)


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def upload(collect: Path, board: str, run_id: str, at: datetime, groups: tuple[str, ...]) -> Path:
    """One board's run as the board uploads it: COLLECT/<board>/<run_id>/."""
    run = RunBuilder(collect / board / run_id, run_id=run_id)
    run.run["started_at"] = _stamp(at - timedelta(minutes=1))
    run.run["finished_at"] = _stamp(at)
    run.run["gates"] = {groups[0]: {"max_us": 100, "avg_us": None, "p99_9_us": None}}
    run.add_good_host(board, groups)
    return run.root


def test_every_board_newest_run_and_stale_marked(tmp_path: Path) -> None:
    collect = tmp_path / "collect"
    upload(collect, "orin-01", "old", NOW - timedelta(hours=5), ("line_a",))
    upload(collect, "orin-01", "new", NOW - timedelta(minutes=10), ("line_a",))
    upload(collect, "orin-02", "r1", NOW - timedelta(hours=3), ("line_b",))
    (collect / "orin-03").mkdir()  # enrolled, nothing uploaded yet
    dest = tmp_path / "fleet"

    collected = assemble(collect, dest, timedelta(hours=2), now=NOW)

    run = json.loads((dest / "run.json").read_text())
    assert run["hosts"] == {"orin-01": ["line_a"], "orin-02": ["line_b"], "orin-03": []}
    assert set(run["gates"]) == {"line_a", "line_b"}
    assert run["finished_at"] == _stamp(NOW - timedelta(minutes=10))
    assert [r.run_dir.name for r in collected.runs] == ["new", "r1"]
    assert list(collected.stale) == ["orin-02"]
    assert collected.missing == ("orin-03",)
    checks = json.loads((dest / "hosts/orin-02/audit.json").read_text())["checks"]
    assert checks[-1]["id"] == "result_age" and checks[-1]["status"] == "fail"
    fresh = json.loads((dest / "hosts/orin-01/audit.json").read_text())["checks"]
    assert all(c["id"] != "result_age" for c in fresh)
    assert not (dest / "hosts/orin-03").exists()


def test_links_uploaded_by_a_board_are_not_followed(tmp_path: Path) -> None:
    collect = tmp_path / "collect"
    root = upload(collect, "orin-01", "r1", NOW, ("line_a",))
    secret = tmp_path / "secret"
    secret.write_text("not for the report")
    (root / "hosts/orin-01/cyclictest.txt").symlink_to(secret)
    dest = tmp_path / "fleet"
    assemble(collect, dest, timedelta(hours=1), now=NOW)
    assert not (dest / "hosts/orin-01/cyclictest.txt").exists()


@pytest.mark.parametrize(
    ("text", "age"),
    [("90s", timedelta(seconds=90)), ("45m", timedelta(minutes=45)), ("2d", timedelta(days=2))],
)
def test_parse_age(text: str, age: timedelta) -> None:
    assert parse_age(text) == age


@pytest.mark.parametrize("text", ["", "0h", "6", "6 hours", "-1h", "1.5h", "h"])
def test_parse_age_refuses(text: str) -> None:
    with pytest.raises(ReportError, match="--stale-after"):
        parse_age(text)


def test_cli_report_shows_every_board_and_fails_on_a_stale_one(tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    collect = tmp_path / "collect"
    upload(collect, "orin-01", "r1", now - timedelta(minutes=1), ("line_a",))
    upload(collect, "orin-02", "r1", now - timedelta(hours=30), ("line_b",))

    fresh_only = run_cli(
        [
            "report",
            "--collected",
            str(collect),
            "--stale-after",
            "2d",
            "--out",
            str(tmp_path / "a"),
        ],
        cwd=tmp_path,
    )
    assert fresh_only.returncode == 0, fresh_only.stdout + fresh_only.stderr

    outcome = run_cli(["report", "--collected", str(collect)], cwd=tmp_path)
    assert outcome.returncode == 1, outcome.stdout + outcome.stderr
    assert "stale: orin-02: last result 30.0 h old" in outcome.stdout
    report = json.loads((collect / ".report/report.json").read_text())
    text = json.dumps(report)
    assert "orin-01" in text and "orin-02" in text and "result_age" in text


def test_cli_refuses_a_folder_without_boards(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    outcome = run_cli(["report", "--collected", str(tmp_path / "empty")], cwd=tmp_path)
    assert outcome.returncode == 2
    assert "no board folder" in outcome.stderr
    assert list((tmp_path / "empty").iterdir()) == []
