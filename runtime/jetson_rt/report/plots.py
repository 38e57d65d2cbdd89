"""Plots for the HTML report, rendered by matplotlib to inline SVG.

matplotlib is imported inside :func:`render_plots` (the Agg canvas, SVG
output), so reading and judging results works where it is not installed. One
figure is created and reused for every host: creating a figure costs more than
drawing six lines on it. Text stays text in the SVG (``svg.fonttype: none``),
which keeps the files small and lets the page's font render it.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from jetson_rt.log import logger
from jetson_rt.report.cyclictest import CyclictestResult, ThreadLatency
from jetson_rt.report.evaluate import FleetReport, HostReport

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

VERDICT_COLOURS = {"pass": "#2e7d32", "warn": "#b26a00", "fail": "#c62828", "error": "#6b7280"}
CPU_COLOURS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#17becf",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
)

# Any: matplotlib types rc keys as a Literal of every known name.
_RC: Any = {
    "svg.fonttype": "none",
    "svg.hashsalt": "jetson-rt-report",
    "font.family": "sans-serif",
    "font.size": 8.5,
    "axes.edgecolor": "#9ca3af",
    "axes.labelcolor": "#374151",
    "axes.linewidth": 0.8,
    "xtick.color": "#4b5563",
    "ytick.color": "#4b5563",
    "grid.color": "#e5e7eb",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "legend.fontsize": 7.5,
    "path.simplify": True,
}

# Drawn for empty buckets: below the y axis' lower limit (0.8), so the line drops out.
_EMPTY_BUCKET = 0.5

# Every id definition and reference matplotlib writes (always written this way).
_ID_MARKERS = (' id="', "url(#", 'href="#')
_ROOT_SIZE_RE = re.compile(r'<svg([^>]*?)\swidth="([^"]*)"\sheight="[^"]*"')


def _inline(svg: str, prefix: str) -> str:
    """Make one SVG document embeddable next to others in a single HTML page.

    Drops the XML prolog and fixed size (the viewBox scales it) and prefixes
    every id and reference, since ids are page-global once inlined and
    matplotlib reuses the same ones in every figure.
    """
    start = svg.find("<svg")
    svg = svg[start:] if start >= 0 else svg
    # Scale down with the page, never up past the size it was drawn at.
    svg = _ROOT_SIZE_RE.sub(r'<svg\1 class="plot" role="img" style="max-width:\2"', svg, count=1)
    # str.replace: a regular expression with a callback costs ~2 ms per figure here.
    for marker in _ID_MARKERS:
        svg = svg.replace(marker, marker + prefix)
    return svg


def _svg(figure: Figure, prefix: str) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return _inline(buffer.getvalue(), prefix)


@dataclass(frozen=True)
class LegendEntry:
    """One line of a host's histogram: its colour and what it shows."""

    colour: str
    text: str


@dataclass(frozen=True)
class Plots:
    """SVG markup: one histogram per host that has histograms, one fleet chart.

    A histogram's legend (one entry per CPU, in line order) is page text beside the
    figure rather than text in it: selectable, and none of it to lay out per figure.
    """

    hosts: dict[str, str]
    fleet_max: str | None
    legends: dict[str, list[LegendEntry]]


def _steps(buckets: Any, counts: Any) -> tuple[Any, Any]:
    """Step-plot points for sparse buckets: bucket d holds [d, d+1) us, and a run of
    empty buckets is one point below the axis floor, so gaps show as drops instead of
    lines across them. As many points as non-empty buckets (plus gaps), never one per
    microsecond: a bucket at 10^9 us costs what a bucket at 10 us costs."""
    gap_after = np.r_[buckets[1:] != buckets[:-1] + 1, False]
    parts_x = [buckets, buckets[gap_after] + 1, buckets[-1:] + 1]
    parts_y = [
        counts.astype(float),
        np.full(int(gap_after.sum()), _EMPTY_BUCKET),
        counts[-1:].astype(float),
    ]
    if buckets[0] > 0:
        parts_x.insert(0, np.zeros(1, dtype=buckets.dtype))
        parts_y.insert(0, np.full(1, _EMPTY_BUCKET))
    xs = np.concatenate(parts_x)
    ys = np.concatenate(parts_y)
    order = np.argsort(xs, kind="stable")
    return xs[order], ys[order]


def _plotted_threads(result: CyclictestResult) -> list[ThreadLatency]:
    return [t for t in result.threads if t.counts.size]


def _legend(result: CyclictestResult) -> list[LegendEntry]:
    entries = []
    for number, thread in enumerate(_plotted_threads(result)):
        overflow = f", {thread.overflows} over" if thread.overflows else ""
        max_text = "n/a" if thread.max_us is None else f"{thread.max_us:.0f} us"
        entries.append(
            LegendEntry(
                CPU_COLOURS[number % len(CPU_COLOURS)], f"{thread.label}: max {max_text}{overflow}"
            )
        )
    return entries


@contextmanager
def _matplotlib() -> Iterator[Any]:
    import matplotlib

    # Figures are built with matplotlib.figure.Figure, never pyplot: no GUI backend,
    # no global figure registry, and the SVG canvas is chosen by savefig(format="svg").
    matplotlib.use("Agg", force=False)
    with matplotlib.rc_context(_RC):
        yield matplotlib


def render_plots(report: FleetReport, workers: int | None = None) -> Plots:
    """Render every plot of the report.

    Host figures are independent, so on a multi-core controller they are drawn
    by forked worker processes (``workers``: default one per core, at most 8;
    1 draws them here). Forking shares the loaded results without copying them.
    """
    todo = [
        number
        for number, host in enumerate(report.hosts)
        if host.record.cyclictest is not None and host.record.cyclictest.has_histograms
    ]
    with _matplotlib():
        jobs = _worker_count(workers, len(todo))
        svgs, fleet = _render_all(report, todo, jobs, fleet=report.max_us is not None)
    legends = {}
    for number in todo:
        result = report.hosts[number].record.cyclictest
        assert result is not None  # filtered above
        legends[report.hosts[number].name] = _legend(result)
    return Plots(
        hosts={report.hosts[n].name: svg for n, svg in zip(todo, svgs, strict=True)},
        fleet_max=fleet,
        legends=legends,
    )


# Below this many figures a process pool costs more than it saves.
_MIN_FIGURES_PER_WORKER = 6
_MAX_WORKERS = 8
# Drawing the fleet chart costs about as much as this many host figures (50 rotated
# host names to lay out): the process that draws it gets that many fewer hosts.
_FLEET_CHART_COST = 5


def _worker_count(requested: int | None, figures: int) -> int:
    if requested is not None:
        return max(1, min(requested, figures))
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    if threading.active_count() > 1:
        # Forking a threaded process can deadlock the child (a lock held by another
        # thread is copied locked); draw here instead.
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, _MAX_WORKERS, figures // _MIN_FIGURES_PER_WORKER))


def _render_hosts(report: FleetReport, numbers: list[int]) -> list[str]:
    from matplotlib.figure import Figure

    canvas = _HistogramFigure(Figure)
    svgs = []
    for number in numbers:
        host = report.hosts[number]
        assert host.record.cyclictest is not None  # filtered by render_plots
        canvas.show(host, host.record.cyclictest)
        svgs.append(_svg(canvas.figure, f"h{number}-"))
    return svgs


# The report a forked worker draws from: inherited through fork, never pickled.
_FORKED_REPORT: FleetReport | None = None


def _forked_worker(numbers: list[int]) -> list[str]:
    assert _FORKED_REPORT is not None  # set before the pool forks
    with _matplotlib():
        return _render_hosts(_FORKED_REPORT, numbers)


def _shares(numbers: list[int], jobs: int, head_start: int) -> list[list[int]]:
    """Host numbers for each of ``jobs`` processes, balanced by figure count; the first
    (this process) starts ``head_start`` figures behind for its other work."""
    chunks: list[list[int]] = [[] for _ in range(jobs)]
    loads = [head_start] + [0] * (jobs - 1)
    for number in numbers:
        slot = loads.index(min(loads))
        chunks[slot].append(number)
        loads[slot] += 1
    return chunks


def _render_all(
    report: FleetReport, numbers: list[int], jobs: int, fleet: bool
) -> tuple[list[str], str | None]:
    """SVG for each host number, and the fleet chart when ``fleet``.

    ``jobs - 1`` forked workers draw their share of the hosts while this process
    draws the fleet chart and the rest; a worker that dies (out of memory, killed)
    has its share drawn here instead.
    """
    from matplotlib.figure import Figure

    if jobs <= 1:
        fleet_svg = _render_fleet_max(report, Figure) if fleet else None
        return _render_hosts(report, numbers), fleet_svg
    global _FORKED_REPORT  # noqa: PLW0603 -- hand-off to forked children, reset below
    chunks = _shares(numbers, jobs, _FLEET_CHART_COST if fleet else 0)
    by_number: dict[int, str] = {}
    _FORKED_REPORT = report
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=jobs - 1, mp_context=context) as pool:
            futures = [pool.submit(_forked_worker, chunk) for chunk in chunks[1:]]
            fleet_svg = _render_fleet_max(report, Figure) if fleet else None
            by_number.update(zip(chunks[0], _render_hosts(report, chunks[0]), strict=True))
            for chunk, future in zip(chunks[1:], futures, strict=True):
                try:
                    svgs = future.result()
                except (BrokenProcessPool, OSError) as exc:
                    logger.warning("a plot worker failed (%s); drawing its figures here", exc)
                    svgs = _render_hosts(report, chunk)
                by_number.update(zip(chunk, svgs, strict=True))
    finally:
        _FORKED_REPORT = None
    return [by_number[n] for n in numbers], fleet_svg


def _count_label(value: float, _position: float) -> str:
    """Log-axis labels as plain text (1, 10, 100, 1k ... 10M): mathtext is slow to lay out."""
    if value <= 0:
        return ""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def _plain_log_axis(axis: Any) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    axis.set_major_locator(LogLocator(base=10.0, numticks=6))
    axis.set_major_formatter(FuncFormatter(_count_label))
    axis.set_minor_locator(NullLocator())


class _HistogramFigure:
    """OSADL-style latency plot: samples per 1 us bucket, log scale, one line per CPU.

    Built once and updated per host (line data, limits): axes, ticks and text
    objects are reused, which is most of what drawing a figure costs. The legend
    is page text (:attr:`Plots.legends`).
    """

    def __init__(self, figure_class: type[Figure]) -> None:
        from matplotlib.ticker import MaxNLocator

        self.figure = figure_class(figsize=(10.5, 2.9))
        self.figure.subplots_adjust(left=0.06, right=0.99, top=0.96, bottom=0.15)
        self.axes: Axes = self.figure.add_subplot()
        axes = self.axes
        axes.set_yscale("log")
        _plain_log_axis(axes.yaxis)
        axes.set_xlabel("Latency (us)", labelpad=2)
        axes.set_ylabel("Samples", labelpad=2)
        # Fixed label positions: matplotlib otherwise measures every tick label's box
        # on each draw to place them.
        axes.xaxis.set_label_coords(0.5, -0.11)
        axes.yaxis.set_label_coords(-0.045, 0.5)
        axes.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True, steps=[1, 2, 5, 10]))
        axes.grid(True, which="major", axis="y")
        self.lines: list[Any] = []
        self.gate_line = axes.axvline(0, color="#c62828", linestyle=(0, (4, 3)), linewidth=0.8)
        self.gate_text = axes.text(
            0,
            0.97,
            "",
            transform=axes.get_xaxis_transform(),
            color="#c62828",
            fontsize=7.5,
            ha="left",
            va="top",
        )

    def _ensure(self, count: int) -> None:
        while len(self.lines) < count:
            colour = CPU_COLOURS[len(self.lines) % len(CPU_COLOURS)]
            (line,) = self.axes.plot([], [], drawstyle="steps-post", color=colour, linewidth=0.9)
            self.lines.append(line)

    def show(self, host: HostReport, result: CyclictestResult) -> None:
        threads = _plotted_threads(result)
        self._ensure(len(threads))
        right = 0.0
        top = 1.0
        for line, thread in zip(self.lines, threads, strict=False):
            xs, ys = _steps(thread.buckets, thread.counts)
            end = int(thread.buckets[-1]) + 1
            line.set_data(xs, ys)
            line.set_visible(True)
            right = max(right, float(end))
            top = max(top, float(thread.counts.max()))
        for line in self.lines[len(threads) :]:
            line.set_visible(False)
        limit = host.gate.gate.max_us
        show_gate = limit is not None and limit <= max(right, 1.0) * 1.5
        self.gate_line.set_visible(show_gate)
        self.gate_text.set_visible(show_gate)
        if show_gate and limit is not None:
            self.gate_line.set_xdata([limit, limit])
            self.gate_text.set_x(limit)
            self.gate_text.set_text(f" gate {limit:g} us")
            right = max(right, limit * 1.05)
        self.axes.set_xlim(0, max(right * 1.04, 10.0))
        self.axes.set_ylim(0.8, top * 3.0)


def _render_fleet_max(report: FleetReport, figure_class: type[Figure]) -> str:
    """Worst latency per host, on a log axis, coloured by verdict; previous run as rings."""
    hosts = [h for h in report.hosts if h.summary is not None and h.summary.max_us is not None]
    longest = max((len(h.name) for h in hosts), default=8)
    figure = figure_class(figsize=(11.0, 2.6 + 0.055 * longest))
    # Room for the rotated host names, which grow downwards.
    figure.subplots_adjust(left=0.065, right=0.99, top=0.95, bottom=min(0.5, 0.1 + 0.02 * longest))
    axes = figure.add_subplot()
    axes.set_axisbelow(True)
    positions = np.arange(len(hosts))
    values = np.array([h.summary.max_us if h.summary else 0.0 for h in hosts], dtype=float)
    colours = [VERDICT_COLOURS[h.verdict] for h in hosts]
    axes.bar(positions, values, color=colours, width=0.7, label="this run")
    previous = [
        (i, h.trend.max_us)
        for i, h in enumerate(hosts)
        if h.trend is not None and h.trend.max_us is not None
    ]
    if previous:
        axes.scatter(
            [i for i, _ in previous],
            [v for _, v in previous],
            facecolors="none",
            edgecolors="#111827",
            s=18,
            linewidths=0.8,
            zorder=3,
            label="previous run",
        )
        axes.legend(loc="upper right")
    limits = sorted({h.gate.gate.max_us for h in hosts if h.gate.gate.max_us is not None})
    for limit in limits:
        axes.axhline(limit, color="#c62828", linestyle=(0, (4, 3)), linewidth=0.8)
        axes.annotate(
            f"gate {limit:g} us",
            xy=(1.0, limit),
            xycoords=("axes fraction", "data"),
            xytext=(-2, 2),
            ha="right",
            textcoords="offset points",
            color="#c62828",
            fontsize=7.5,
        )
    top = max([float(values.max()) if values.size else 1.0, *limits])
    low = float(values[values > 0].min()) if (values > 0).any() else 1.0
    if top / low > 20:
        # Simulated hosts in ms next to hardware in us: only a log axis shows both.
        axes.set_yscale("log")
        _plain_log_axis(axes.yaxis)
        axes.set_ylim(top=top * 4.0)
    else:
        axes.set_ylim(0, top * 1.15)
    axes.set_ylabel("Max latency (us)")
    axes.set_xticks(positions)
    axes.set_xticklabels([h.name for h in hosts], rotation=60, ha="right", fontsize=7)
    axes.set_xlim(-0.6, len(hosts) - 0.4)
    axes.grid(True, axis="y", which="major")
    return _svg(figure, "fleet-")
