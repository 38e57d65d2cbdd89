"""The page as a browser renders it, and the plots behind it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.chromium import chromium, png_size, run_chromium, screenshot_page
from tests.unit.report.runs import RunBuilder

from jetson_rt.report.build import build_report
from jetson_rt.report.evaluate import judge_run
from jetson_rt.report.loader import load_run
from jetson_rt.report.plots import CPU_COLOURS, render_plots


def test_page_renders_in_headless_chromium(mixed_run: RunBuilder, tmp_path: Path) -> None:
    binary = chromium()
    if binary is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    outputs = build_report(mixed_run.root, tmp_path / "out")
    url = outputs.html.resolve().as_uri()

    dom = run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    # The parsed DOM, not the file: inline SVG survived the HTML parser as elements.
    assert len(re.findall(r"<svg\b[^>]*class=\"plot\"", dom.stdout)) == 6
    assert dom.stdout.count("<path") > 50
    assert dom.stdout.count('class="swatch"') >= 6
    assert 'id="host-orin-04"' in dom.stdout
    assert re.search(r'<div class="word">\s*FAIL\s*</div>', dom.stdout)

    screenshot = screenshot_page(binary, outputs.html, "report-generated-run.png", tmp_path)
    assert png_size(screenshot) == (1280, 2000)
    # A blank page compresses to a few kB; the rendered report does not.
    assert screenshot.stat().st_size > 60_000


def test_forked_and_in_process_plots_are_identical(mixed_run: RunBuilder) -> None:
    report = judge_run(load_run(mixed_run.root))
    here = render_plots(report, workers=1)
    forked = render_plots(report, workers=2)
    assert here.hosts.keys() == forked.hosts.keys()
    assert here.hosts == forked.hosts
    assert here.fleet_max == forked.fleet_max


def test_plots_are_svg_with_prefixed_ids(mixed_run: RunBuilder) -> None:
    report = judge_run(load_run(mixed_run.root))
    plots = render_plots(report, workers=1)
    assert sorted(plots.hosts) == ["orin-01", "orin-02", "orin-03", "orin-06", "sim-01"]
    for number, (name, svg) in enumerate(sorted(plots.hosts.items())):
        assert svg.startswith("<svg"), name
        assert "<?xml" not in svg
        ids = re.findall(r'\bid="([^"]+)"', svg)
        prefixes = {i.split("-", 1)[0] for i in ids}
        assert len(prefixes) == 1, (number, prefixes)
        # Log axis labels stay text, not mathtext glyph paths.
        assert "<text" in svg
    assert plots.fleet_max is not None and 'id="fleet-' in plots.fleet_max
    # the legend is page text: one entry per plotted CPU, in the lines' colours and order
    assert plots.legends.keys() == plots.hosts.keys()
    for name, entries in plots.legends.items():
        host = next(h for h in report.hosts if h.name == name)
        assert host.record.cyclictest is not None
        threads = [t for t in host.record.cyclictest.threads if t.counts.size]
        assert [e.text.split(":")[0] for e in entries] == [t.label for t in threads]
        assert [e.colour for e in entries] == list(CPU_COLOURS[: len(threads)])
        assert all(": max " in e.text for e in entries)


def test_reading_and_judging_need_neither_matplotlib_nor_jinja2(mixed_run: RunBuilder) -> None:
    # The CLI must load on a Jetson without the controller extra; rendering is lazy.
    code = (
        "import sys\n"
        "sys.modules['matplotlib'] = None\n"
        "sys.modules['jinja2'] = None\n"
        "import argparse\n"
        "from pathlib import Path\n"
        "from jetson_rt.report import cli\n"
        "from jetson_rt.report.evaluate import judge_run\n"
        "from jetson_rt.report.junit import build_junit\n"
        "from jetson_rt.report.loader import load_run\n"
        "from jetson_rt.report.report_json import build_report_dict\n"
        "cli.register(argparse.ArgumentParser().add_subparsers())\n"
        "report = judge_run(load_run(Path(sys.argv[1])))\n"
        "build_report_dict(report)\n"
        "build_junit(report)\n"
        "print(report.verdict)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(mixed_run.root)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "fail"


def _die(_numbers: list[int]) -> list[str]:
    os._exit(3)  # a worker killed mid-run, as the OOM killer would


def test_dead_plot_workers_are_replaced_by_drawing_here(
    mixed_run: RunBuilder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from jetson_rt.report import plots

    report = judge_run(load_run(mixed_run.root))
    expected = render_plots(report, workers=1)
    monkeypatch.setattr(plots, "_forked_worker", _die)
    caplog.set_level("WARNING", logger="jetson_rt")
    result = render_plots(report, workers=3)
    assert result.hosts == expected.hosts
    assert "a plot worker failed" in caplog.text


def test_worker_count() -> None:
    from jetson_rt.report.plots import _worker_count

    assert _worker_count(1, 50) == 1
    assert _worker_count(4, 2) == 2  # never more workers than figures
    assert _worker_count(None, 5) == 1  # too few figures to be worth a pool
    assert 1 <= _worker_count(None, 600) <= 8


def test_no_fork_while_other_threads_run() -> None:
    import threading

    from jetson_rt.report.plots import _worker_count

    stop = threading.Event()
    helper = threading.Thread(target=stop.wait)
    helper.start()
    try:
        assert _worker_count(None, 600) == 1
    finally:
        stop.set()
        helper.join()
