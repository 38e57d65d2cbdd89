"""Bad video input and publishing settings refused by ``jetson-rt check-config``.

Each case starts from the configuration ``check-config`` accepts
(:func:`runner_files.good_doc`) and breaks one thing about a task's GStreamer
input or the ``publish`` section. Checked by
:func:`tests.badinput.harness.check_refused`: exit 2, one ``ERROR`` line naming
the key, no traceback, nothing in the folder changed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.badinput import runner_files as rf
from tests.badinput.harness import Case, check_refused, ids, run_cli

ARGV = ("check-config", "{dir}/runner.yaml")
GOOD_PIPELINE = "videotestsrc is-live=true ! video/x-raw,framerate=30/1"


def case(id: str, setup: rf.Setup, expect: str) -> Case:
    return Case(id=id, argv=ARGV, expect=expect, setup=setup, exit_code=2, timeout_s=60)


def video(**values: object) -> rf.Setup:
    return rf.task(input={"source": "gstreamer", "pipeline": GOOD_PIPELINE, **values})


CASES = [
    case("gstreamer-without-pipeline", rf.task(input={"source": "gstreamer"}), r"pipeline"),
    case(
        "unknown-source",
        rf.task(input={"source": "rtsp", "pipeline": GOOD_PIPELINE}),
        r"source.*one of synthetic, npy, v4l2, gstreamer",
    ),
    case("pipeline-not-a-string", video(pipeline=["videotestsrc"]), r"pipeline.*string"),
    case("on-eos-unknown", video(on_eos="loop"), r"on_eos.*one of restart, stop"),
    case("stall-too-short", video(stall_ms=1), r"stall_ms.*at least 10"),
    case(
        "backoff-max-below-first",
        video(restart_backoff_ms=500, restart_backoff_max_ms=100),
        r"restart_backoff_max_ms.*at least restart_backoff_ms",
    ),
    case(
        "pipeline-with-unknown-element",
        video(pipeline="nosuchcamerasrc ! videoconvert"),
        r"nosuchcamerasrc",
    ),
    case(
        "publish-key-with-wildcard",
        rf.section("publish", enabled=True, key_prefix="jetson-rt/*"),
        r"publish.key_prefix.*wildcards",
    ),
    case(
        "publish-key-with-empty-part",
        rf.section("publish", enabled=True, key_prefix="a//b"),
        r"publish.key_prefix",
    ),
    case(
        "publish-endpoint-without-port",
        rf.section("publish", enabled=True, connect=["tcp/10.0.0.2"]),
        r"publish.connect\[0\].*<protocol>/<host>:<port>",
    ),
    case(
        "publish-endpoint-unknown-protocol",
        rf.section("publish", enabled=True, connect=["http/10.0.0.2:80"]),
        r"protocol must be one of",
    ),
    case(
        "publish-connect-not-a-list",
        rf.section("publish", enabled=True, connect="tcp/10.0.0.2:7447"),
        r"publish.connect.*must be a list",
    ),
    case(
        "publish-client-without-router",
        rf.section("publish", enabled=True, mode="client"),
        r"publish.connect.*required with mode: client",
    ),
    case("publish-unknown-key", rf.section("publish", enable=True), r"publish.enable.*unknown"),
    case("publish-queue-zero", rf.section("publish", queue=0), r"publish.queue.*at least 1"),
    case(
        "publish-host-with-slash",
        rf.section("publish", enabled=True, host="line/a"),
        r"publish.host.*one key part",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_refused(case: Case, tmp_path: Path) -> None:
    check_refused(case, tmp_path / "case")


def test_good_video_and_publish_settings_are_accepted(tmp_path: Path) -> None:
    data = rf.good_doc(tmp_path)
    data["tasks"][0]["input"] = {"source": "gstreamer", "pipeline": GOOD_PIPELINE}
    data["publish"] = {"enabled": True, "connect": ["tcp/10.0.0.2:7447"], "mode": "peer"}
    rf.write_doc(tmp_path, data)
    outcome = run_cli(["check-config", "--no-files", str(tmp_path / rf.CONFIG)], tmp_path)
    assert outcome.returncode == 0, outcome.stderr
