"""Parse cyclictest results: rt-tests ``--json`` files and the ``-q``/``-h`` text.

cyclictest counts a latency of ``d`` microseconds (truncated) in bucket ``d``
when ``d`` is below the histogram size (``-h N``), and as an *overflow*
otherwise. The JSON file lists only the non-empty buckets and no overflow
count, so overflows are ``cycles - sum(histogram)``. The text output gives the
same numbers as ``# Total:`` (in-range samples) and ``# Histogram Overflows:``.

Every parser here is defensive: rt-tests versions differ in key names (the
2.x JSON keys ``"cmdline:"`` and ``"rt_test_version:"`` really end in a colon),
fields go missing, C's ``printf`` writes ``nan`` for an average over zero
cycles. Whatever can be read is kept, what is merely absent or unusual is
noted in :attr:`CyclictestResult.notes`; only a file with no thread at all is
an error.

Data that contradicts itself is another matter: a latency that is negative,
NaN or infinite, a bucket that cannot be read, a histogram holding more
samples than there were cycles, buckets at or beyond the ``-h`` limit, a
maximum below the highest non-empty bucket. Such a file cannot back a
verdict: :attr:`CyclictestResult.problems` lists each contradiction and the
report makes the host an error. No value is trusted to size anything: a
bucket at 10^12 us is one array element, never an array of 10^12.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from jetson_rt.errors import ReportError
from jetson_rt.report import jsontext

IntArray = npt.NDArray[np.int64]

#: JSON ``file_version`` values this parser was written against.
KNOWN_FILE_VERSIONS = frozenset({1})

# cyclictest starts its statistics with min = 1000000 before the first cycle.
_UNSET_MIN = 1_000_000

#: Beyond any real run (six years at -i200): a count or cycle number above it is corrupt.
MAX_COUNT = 10**12
#: A latency bucket above this (1000 s) is not a latency.
MAX_BUCKET_US = 10**9
#: cyclictest runs one thread per CPU; a thread index above this is not one.
MAX_THREADS = 4096
# Longest integer read from text (int64 holds 18 digits).
_MAX_DIGITS = 18

_EMPTY = np.zeros(0, dtype=np.int64)


class CyclictestParseError(ReportError):
    """A cyclictest result file holds no usable thread."""


@dataclass(frozen=True)
class Percentile:
    """A latency percentile read from a histogram.

    ``in_overflow`` is true when the requested rank lies among the overflow
    samples: the value is then the thread's maximum, an upper bound.
    """

    value_us: float
    in_overflow: bool


@dataclass(frozen=True)
class ThreadLatency:
    """One measurement thread: its statistics and (when ``-h`` was given) its histogram.

    ``buckets``/``counts`` are the non-empty histogram buckets in ascending
    order (latency in microseconds, number of samples). ``overflows`` is
    ``None`` when unknown (no histogram).
    """

    index: int
    cpu: int | None
    cycles: int
    min_us: float | None
    avg_us: float | None
    max_us: float | None
    buckets: IntArray = field(default_factory=lambda: _EMPTY, repr=False)
    counts: IntArray = field(default_factory=lambda: _EMPTY, repr=False)
    overflows: int | None = None
    overflow_cycles: tuple[int, ...] = ()

    @property
    def has_histogram(self) -> bool:
        return bool(self.counts.size) or (self.overflows is not None and self.overflows > 0)

    @property
    def label(self) -> str:
        return f"CPU {self.cpu}" if self.cpu is not None else f"thread {self.index}"

    def percentile(self, fraction: float) -> Percentile | None:
        """Latency below which ``fraction`` (0..1) of all samples lie, or None.

        Nearest-rank method over 1 us buckets: the smallest bucket whose
        cumulative count reaches ``ceil(fraction * N)``, ``N`` counting the
        overflows too. Overflow samples are placed at the thread's maximum, so
        a percentile that falls among them is reported as the maximum (an upper
        bound, never an under-estimate).
        """
        if not self.has_histogram:
            return None
        in_range = int(self.counts.sum())
        overflows = self.overflows or 0
        total = in_range + overflows
        if total == 0:
            return None
        rank = max(1, math.ceil(fraction * total))
        if rank <= in_range:
            cumulative = np.cumsum(self.counts)
            position = int(np.searchsorted(cumulative, rank, side="left"))
            return Percentile(float(self.buckets[position]), in_overflow=False)
        if self.max_us is not None:
            return Percentile(float(self.max_us), in_overflow=True)
        # No maximum recorded: the best known bound is the histogram's end.
        upper = float(self.buckets[-1] + 1) if self.buckets.size else 0.0
        return Percentile(upper, in_overflow=True)


def _fmt_us(value: float) -> str:
    return f"{value:g}"


def thread_problems(thread: ThreadLatency, limit: int | None) -> list[str]:
    """What in ``thread``'s figures contradicts the rest (``limit``: the ``-h`` size)."""
    where = thread.label
    found: list[str] = []
    for name, value in (("min", thread.min_us), ("avg", thread.avg_us), ("max", thread.max_us)):
        if value is not None and value < 0:
            found.append(f"{where}: {name} latency is negative ({_fmt_us(value)} us)")
        elif value is not None and value > MAX_BUCKET_US:
            found.append(f"{where}: {name} latency {_fmt_us(value)} us is beyond any wake-up")
    if thread.cycles < 0 or thread.cycles > MAX_COUNT:
        found.append(f"{where}: cycles {thread.cycles} is not a possible count")
    lo, hi = thread.min_us, thread.max_us
    if lo is not None and hi is not None and lo > hi:
        found.append(f"{where}: min {_fmt_us(lo)} us is above max {_fmt_us(hi)} us")
    avg = thread.avg_us
    if avg is not None and hi is not None and avg > hi + 0.5:
        found.append(f"{where}: avg {_fmt_us(avg)} us is above max {_fmt_us(hi)} us")
    if avg is not None and lo is not None and avg < lo - 0.5:
        found.append(f"{where}: avg {_fmt_us(avg)} us is below min {_fmt_us(lo)} us")
    if thread.counts.size:
        top, bottom = int(thread.buckets[-1]), int(thread.buckets[0])
        if hi is not None and hi < top:
            found.append(
                f"{where}: max {_fmt_us(hi)} us is below its histogram's highest bucket ({top} us)"
            )
        if lo is not None and lo > bottom:
            found.append(
                f"{where}: min {_fmt_us(lo)} us is above its histogram's lowest bucket "
                f"({bottom} us)"
            )
        if limit is not None and top >= limit:
            beyond = int(np.count_nonzero(thread.buckets >= limit))
            found.append(
                f"{where}: {beyond} histogram bucket(s) at or beyond the -h{limit} limit "
                f"(up to {top} us)"
            )
    overflows = thread.overflows or 0
    if overflows > 0 and limit is not None and hi is not None and hi < limit:
        found.append(
            f"{where}: {overflows} overflow(s) (latencies of {limit} us or more) but max is "
            f"{_fmt_us(hi)} us"
        )
    return found


@dataclass(frozen=True)
class CyclictestResult:
    """A parsed cyclictest run."""

    source: Literal["json", "text"]
    threads: tuple[ThreadLatency, ...]
    version: str | None = None
    cmdline: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    return_code: int | None = None
    kernel_release: str | None = None
    kernel_realtime: bool | None = None
    nodename: str | None = None
    histogram_limit_us: int | None = None
    interval_us: int | None = None
    priority: int | None = None
    notes: tuple[str, ...] = ()
    #: Contradictions found while reading (unreadable buckets, NaN latencies...);
    #: :attr:`problems` adds those between the figures.
    read_problems: tuple[str, ...] = ()

    @property
    def problems(self) -> tuple[str, ...]:
        """Every contradiction in the data; any one means no verdict can rest on it."""
        found = list(self.read_problems)
        for thread in self.threads:
            found.extend(thread_problems(thread, self.histogram_limit_us))
        return tuple(dict.fromkeys(found))

    @property
    def max_us(self) -> float | None:
        values = [t.max_us for t in self.threads if t.max_us is not None]
        return max(values) if values else None

    @property
    def worst_avg_us(self) -> float | None:
        values = [t.avg_us for t in self.threads if t.avg_us is not None]
        return max(values) if values else None

    @property
    def overflows(self) -> int | None:
        values = [t.overflows for t in self.threads]
        if any(v is None for v in values):
            return None
        return sum(v for v in values if v is not None)

    @property
    def has_histograms(self) -> bool:
        return any(t.has_histogram for t in self.threads)


# --------------------------------------------------------------------------- helpers


def _first(mapping: Mapping[str, Any], *keys: str) -> Any:
    """The value of the first key present (rt-tests renamed keys across versions)."""
    for key in keys:
        if key in mapping:
            return mapping[key]
    return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip(), 10)
        except ValueError:
            return None
    return None


def _fits(value: int | None) -> bool:
    """An int64 histogram can hold it (a corrupt file may carry any integer)."""
    return value is not None and -(2**62) < value < 2**62


def _text_int(digits: str) -> int:
    """An integer from cyclictest's text; a longer one than int64 holds is corrupt."""
    if len(digits.lstrip("-")) > _MAX_DIGITS:
        raise CyclictestParseError(f"number {digits[:24]}... is too long to be a count")
    return int(digits)


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            result = float(value)
        except OverflowError:  # an integer beyond any float
            return None
        return result if math.isfinite(result) else None
    if isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            return None
        return result if math.isfinite(result) else None
    return None


def _as_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _option_value(argv: list[str], short: str, long: str) -> str | None:
    """The value of ``-hN``, ``-h N``, ``--histogram=N`` or ``--histogram N`` (last wins)."""
    found: str | None = None
    for i, arg in enumerate(argv):
        if arg.startswith(f"--{long}="):
            found = arg.split("=", 1)[1]
        elif arg in (f"--{long}", f"-{short}"):
            if i + 1 < len(argv):
                found = argv[i + 1]
        elif arg.startswith(f"-{short}") and not arg.startswith("--"):
            found = arg[len(short) + 1 :]
    return found


@dataclass(frozen=True)
class CmdlineOptions:
    histogram_limit_us: int | None
    interval_us: int | None
    priority: int | None
    #: ``-a``/``--affinity``: None when absent, () for "thread N on CPU N",
    #: else the CPU set threads are pinned to round-robin.
    affinity: tuple[int, ...] | None = None

    def thread_cpu(self, index: int) -> int | None:
        if self.affinity is None:
            return None
        if not self.affinity:
            return index
        return self.affinity[index % len(self.affinity)]


def _cpu_list(text: str) -> tuple[int, ...] | None:
    """``4-5`` or ``0,2,4-5``; None for anything else (negations, node masks, CPUs
    beyond :data:`MAX_THREADS`: a range is never expanded past it)."""
    cpus: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            return None
        if len(first) > 5 or len(last) > 5:
            return None
        start, end = int(first), int(last or first)
        if end >= MAX_THREADS or len(cpus) + max(0, end - start + 1) > MAX_THREADS:
            return None
        cpus.extend(range(start, end + 1))
    return tuple(cpus) or None


def _affinity(argv: list[str]) -> tuple[int, ...] | None:
    # -a takes an optional argument, so its value is always attached (-a4-5).
    found: tuple[int, ...] | None = None
    for arg in argv:
        if arg in ("--affinity", "-a"):
            found = ()
        elif arg.startswith("--affinity="):
            found = _cpu_list(arg.split("=", 1)[1])
        elif arg.startswith("-a") and not arg.startswith("--"):
            found = _cpu_list(arg[2:])
    return found


def _taskset(argv: list[str]) -> tuple[list[str], tuple[int, ...] | None]:
    """``taskset -c LIST cyclictest ...``: cyclictest's own arguments and LIST."""
    if not argv or Path(argv[0]).name != "taskset":
        return argv, None
    cpus: tuple[int, ...] | None = None
    rest = argv[1:]
    while rest and rest[0].startswith("-"):
        arg = rest.pop(0)
        if arg in ("-c", "--cpu-list") and rest:
            cpus = _cpu_list(rest.pop(0))
        elif arg.startswith("--cpu-list="):
            cpus = _cpu_list(arg.split("=", 1)[1])
    return rest, cpus


def _smp(argv: list[str]) -> bool:
    """``-S``/``--smp``, alone or first in a cluster of short options (``-Sp90``)."""
    return any(a == "--smp" or (a.startswith("-S") and not a.startswith("--")) for a in argv)


def parse_cmdline(cmdline: str | None) -> CmdlineOptions:
    """Read ``-h``/``-H``, ``-i``, ``-p`` and the CPUs from a cyclictest command line.

    With ``-S`` (one thread per usable CPU) and no ``-a``, thread N runs on the Nth CPU
    the process may use: the ``taskset -c`` list in front of cyclictest, else CPU N.
    """
    if not cmdline:
        return CmdlineOptions(None, None, None)
    try:
        argv = shlex.split(cmdline)
    except ValueError:
        argv = cmdline.split()
    argv, taskset_cpus = _taskset(argv)
    limit = _as_int(_option_value(argv, "h", "histogram"))
    if limit is None:
        limit = _as_int(_option_value(argv, "H", "histofall"))
    affinity = _affinity(argv)
    if affinity is None and _smp(argv):
        affinity = taskset_cpus or ()
    return CmdlineOptions(
        histogram_limit_us=limit,
        interval_us=_as_int(_option_value(argv, "i", "interval")),
        priority=_as_int(_option_value(argv, "p", "priority")),
        affinity=affinity,
    )


def with_cmdline(result: CyclictestResult, cmdline: str) -> CyclictestResult:
    """Fill in what a text result cannot say from the command line that produced it.

    cyclictest's text output names threads, not CPUs; ``-a`` says where each ran.
    """
    options = parse_cmdline(cmdline)
    threads = tuple(
        replace(t, cpu=options.thread_cpu(t.index)) if t.cpu is None else t for t in result.threads
    )
    return replace(
        result,
        threads=threads,
        cmdline=result.cmdline or cmdline,
        histogram_limit_us=result.histogram_limit_us or options.histogram_limit_us,
        interval_us=result.interval_us or options.interval_us,
        priority=result.priority if result.priority is not None else options.priority,
    )


def _sparse_histogram(raw: Any, problems: list[str], where: str) -> tuple[IntArray, IntArray]:
    """Buckets and counts from ``{"us": count}``, ``[[us, count], ...]`` or a dense list."""
    if raw is None:
        return _EMPTY, _EMPTY
    keys: IntArray
    values: IntArray
    if isinstance(raw, Mapping):
        if not raw:
            return _EMPTY, _EMPTY
        try:
            # Fast path, no Python loop per bucket: numpy parses the string keys and
            # infers one dtype for the counts, integer only if every count is one.
            counts = np.array(list(raw.values()))
            if counts.dtype.kind not in "iu":
                raise ValueError("non-integer count")
            values = counts.astype(np.int64, copy=False)
            keys = np.array(list(raw.keys())).astype(np.int64)
        except (ValueError, TypeError, OverflowError):
            keys, values = _pairs(
                [(_as_int(k), _as_int(v)) for k, v in raw.items()], problems, where
            )
    elif isinstance(raw, list):
        if raw and all(isinstance(item, list | tuple) and len(item) == 2 for item in raw):
            pairs = [(_as_int(item[0]), _as_int(item[1])) for item in raw]
        else:
            pairs = [(i, _as_int(v)) for i, v in enumerate(raw)]
        keys, values = _pairs(pairs, problems, where)
    else:
        problems.append(f"{where}: histogram is a {type(raw).__name__}, not buckets")
        return _EMPTY, _EMPTY
    return _normalise_buckets(keys, values, problems, where)


def _pairs(
    pairs: list[tuple[int | None, int | None]], problems: list[str], where: str
) -> tuple[IntArray, IntArray]:
    good = [(k, v) for k, v in pairs if _fits(k) and _fits(v)]
    if len(good) != len(pairs):
        problems.append(f"{where}: {len(pairs) - len(good)} histogram bucket(s) unreadable")
    keys = np.array([k for k, _ in good], dtype=np.int64)
    values = np.array([v for _, v in good], dtype=np.int64)
    return keys, values


def _normalise_buckets(
    keys: IntArray, values: IntArray, problems: list[str], where: str
) -> tuple[IntArray, IntArray]:
    """Sorted, merged, non-empty buckets. Negative or absurd buckets and counts are
    problems and are left out, so the sums below cannot overflow int64."""
    negative = (keys < 0) | (values < 0)
    if negative.any():
        problems.append(f"{where}: {int(negative.sum())} negative histogram bucket(s) or count(s)")
    absurd = ~negative & ((keys > MAX_BUCKET_US) | (values > MAX_COUNT))
    if absurd.any():
        problems.append(
            f"{where}: {int(absurd.sum())} histogram bucket(s) beyond any possible latency or count"
        )
    keep = ~negative & ~absurd & (values > 0)
    keys, values = keys[keep], values[keep]
    if keys.size and not bool(np.all(keys[1:] > keys[:-1])):
        # Unsorted or repeated keys ("5" and "05"): merge them.
        order = np.argsort(keys, kind="stable")
        keys, values = keys[order], values[order]
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        values = np.add.reduceat(values, starts)
        keys = keys[starts]
    return keys.astype(np.int64, copy=False), values.astype(np.int64, copy=False)


# --------------------------------------------------------------------------- JSON

# glibc prints "nan"/"-nan"/"inf" where a number belongs (0/0 averages); that is not
# JSON. Quoted, the value stays known as not-a-number instead of becoming "absent".
_NAN_RE = re.compile(r"(?<=[:\[,])(\s*)(-?(?:nan|inf))\b", re.IGNORECASE)


def _load_json_text(text: str) -> Any:
    try:
        return jsontext.loads(text)
    except json.JSONDecodeError as first:
        repaired = _NAN_RE.sub(r'\1"\2"', text)
        if repaired != text:
            try:
                return jsontext.loads(repaired)
            except (json.JSONDecodeError, ValueError, RecursionError):
                pass
        raise CyclictestParseError(
            f"not valid JSON (line {first.lineno}, column {first.colno}: {first.msg}); "
            "the file is truncated or corrupt"
        ) from first
    except RecursionError as exc:
        raise CyclictestParseError("JSON nested too deeply to be cyclictest's") from exc
    except ValueError as exc:  # an integer longer than Python converts
        raise CyclictestParseError(f"not readable JSON: {exc}") from exc


def _latency(
    raw: Mapping[str, Any], keys: tuple[str, ...], problems: list[str], where: str
) -> float | None:
    """A latency in microseconds; present but not a finite number is a problem."""
    value = _first(raw, *keys)
    if value is None:
        return None
    number = _as_float(value)
    if number is None:
        problems.append(
            f"{where}: {keys[0]} latency is {_shown(value)}, not a number of microseconds"
        )
    elif number > MAX_BUCKET_US:
        problems.append(f"{where}: {keys[0]} latency {_shown(value)} us is beyond any wake-up")
        return None
    return number


def _shown(value: Any) -> str:
    """``value`` for a message: its repr, or the type's name, cut to 40 characters."""
    if not isinstance(value, str | int | float):
        return type(value).__name__
    if isinstance(value, int) and abs(value) >= 10**40:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def _json_thread(
    index: int, raw: Any, limit: int | None, notes: list[str], problems: list[str]
) -> ThreadLatency | None:
    if not isinstance(raw, Mapping):
        notes.append(f"thread {index}: not an object, skipped")
        return None
    cpu = _as_int(raw.get("cpu"))
    if cpu is not None and not 0 <= cpu < MAX_THREADS:
        cpu = None  # -1: not pinned
    where = f"CPU {cpu}" if cpu is not None else f"thread {index}"
    buckets, counts = _sparse_histogram(raw.get("histogram"), problems, where)
    in_range = int(counts.sum())
    raw_cycles = _first(raw, "cycles", "count", "samples")
    cycles = _as_int(raw_cycles)
    if raw_cycles is not None and (cycles is None or isinstance(raw_cycles, bool)):
        problems.append(f"{where}: cycles is {_shown(raw_cycles)}, not a count")
        cycles = None
    elif cycles is not None and not 0 <= cycles <= MAX_COUNT:
        problems.append(f"{where}: cycles {_shown(cycles)} is not a possible count")
        cycles = None
    # Only a recorded zero means "no sample": then min/max/avg are placeholders.
    no_samples = cycles == 0
    overflows: int | None = None
    if cycles is None:
        cycles = in_range
        if counts.size:
            notes.append(f"{where}: no cycle count; overflows unknown, taken as 0")
            overflows = 0
    elif counts.size or (limit is not None and cycles > 0):
        if cycles < in_range:
            problems.append(
                f"{where}: histogram holds {in_range} samples but cycles is only {cycles}"
            )
        overflows = max(0, cycles - in_range)
    latency_problems: list[str] = []
    min_us = _latency(raw, ("min", "min_us"), latency_problems, where)
    max_us = _latency(raw, ("max", "max_us"), latency_problems, where)
    avg_us = _latency(raw, ("avg", "avg_us", "mean"), latency_problems, where)
    if no_samples:
        # cyclictest prints placeholders (nan averages, min 1000000) for an idle thread.
        min_us = max_us = avg_us = None
    else:
        problems.extend(latency_problems)
        if min_us is not None and min_us >= _UNSET_MIN:
            min_us = None
    return ThreadLatency(
        index=index,
        cpu=cpu,
        cycles=cycles,
        min_us=min_us,
        avg_us=avg_us,
        max_us=max_us,
        buckets=buckets,
        counts=counts,
        overflows=overflows,
    )


def parse_json(text: str | bytes) -> CyclictestResult:
    """Parse the file written by ``cyclictest --json=FILE``."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    data = _load_json_text(text)
    if not isinstance(data, Mapping):
        raise CyclictestParseError(f"expected a JSON object, found {type(data).__name__}")
    notes: list[str] = []
    problems: list[str] = []
    file_version = _as_int(data.get("file_version"))
    if file_version is not None and file_version not in KNOWN_FILE_VERSIONS:
        notes.append(f"file_version {file_version} is newer than this parser; read as version 1")
    cmdline = _as_str(_first(data, "cmdline:", "cmdline", "command_line"))
    options = parse_cmdline(cmdline)
    raw_threads = _first(data, "thread", "threads")
    items: list[tuple[int, Any]] = []
    if isinstance(raw_threads, Mapping):
        for key, value in raw_threads.items():
            index = _as_int(key)
            if index is None:
                notes.append(f"thread key {key!r} is not a number, skipped")
                continue
            items.append((index, value))
    elif isinstance(raw_threads, list):
        items = list(enumerate(raw_threads))
    if len(items) > MAX_THREADS:
        raise CyclictestParseError(f"{len(items)} threads: cyclictest runs one per CPU")
    threads = [
        thread
        for index, raw in sorted(items, key=lambda item: item[0])
        if (thread := _json_thread(index, raw, options.histogram_limit_us, notes, problems))
        is not None
    ]
    if not threads:
        raise CyclictestParseError("no measurement thread in the JSON file")
    declared = _as_int(data.get("num_threads"))
    if declared is not None and declared != len(threads):
        notes.append(f"num_threads is {declared} but {len(threads)} thread(s) were found")
    sysinfo = data.get("sysinfo")
    sysinfo = sysinfo if isinstance(sysinfo, Mapping) else {}
    realtime = _as_int(sysinfo.get("realtime"))
    return CyclictestResult(
        source="json",
        threads=tuple(threads),
        version=_as_str(_first(data, "rt_test_version:", "rt_test_version", "version")),
        cmdline=cmdline,
        start_time=_as_str(data.get("start_time")),
        end_time=_as_str(data.get("end_time")),
        return_code=_as_int(data.get("return_code")),
        kernel_release=_as_str(sysinfo.get("release")),
        kernel_realtime=None if realtime is None else bool(realtime),
        nodename=_as_str(sysinfo.get("nodename")),
        histogram_limit_us=options.histogram_limit_us,
        interval_us=options.interval_us,
        priority=options.priority,
        notes=tuple(notes),
        read_problems=tuple(problems),
    )


# --------------------------------------------------------------------------- text

_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_THREAD_LINE_RE = re.compile(r"^T:\s*(\d+)\s*(?:\(\s*(\d+)\s*\))?(.*)$")
_FIELD_RE = re.compile(r"([A-Za-z]+):\s*(-?\d+)")
_HIST_LINE_RE = re.compile(r"^\d+(?:[ \t]+\d+)+$")
_SUMMARY_RE = re.compile(
    r"^#\s*(Total|Min Latencies|Avg Latencies|Max Latencies|Histogram Overflows)\s*:\s*(.*)$"
)
_OVERFLOW_THREAD_RE = re.compile(r"^#\s*Thread\s+(\d+):(.*)$")
# Cycle numbers listed per thread after "# Histogram Overflow at cycle number:" (shown, not
# judged): the first ones are enough.
_MAX_OVERFLOW_CYCLES = 1000


def _thread_index(digits: str) -> int:
    index = _text_int(digits)
    if index >= MAX_THREADS:
        raise CyclictestParseError(
            f"thread {index}: cyclictest runs one thread per CPU, not {index + 1}"
        )
    return index


def parse_text(text: str | bytes) -> CyclictestResult:
    """Parse cyclictest's console output (``-q`` summary lines and/or ``-h`` histogram)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    notes: list[str] = []
    problems: list[str] = []
    thread_lines: dict[int, dict[str, int]] = {}
    rows: list[list[int]] = []
    summary: dict[str, list[int]] = {}
    overflow_at: dict[int, tuple[int, ...]] = {}
    for raw_line in text.splitlines():
        line = _ANSI_RE.sub("", raw_line).strip()
        if not line:
            continue
        if line.startswith("T:"):
            match = _THREAD_LINE_RE.match(line)
            if match:
                fields = {k: _text_int(v) for k, v in _FIELD_RE.findall(match.group(3))}
                # Non-quiet output repeats the line as it updates: the last one wins.
                thread_lines[_thread_index(match.group(1))] = fields
            continue
        if _HIST_LINE_RE.match(line):
            rows.append([_text_int(v) for v in line.split()])
            continue
        match = _SUMMARY_RE.match(line)
        if match:
            values = re.findall(r"\d+", match.group(2))
            if len(values) > MAX_THREADS + 1:
                raise CyclictestParseError(f"'# {match.group(1)}' lists {len(values)} threads")
            summary[match.group(1)] = [_text_int(v) for v in values]
            continue
        match = _OVERFLOW_THREAD_RE.match(line)
        if match:
            listed = match.group(2).split("#", 1)[0].split()[:_MAX_OVERFLOW_CYCLES]
            overflow_at[_thread_index(match.group(1))] = tuple(_text_int(v) for v in listed)

    nthreads = _text_thread_count(thread_lines, rows, summary)
    if nthreads == 0:
        raise CyclictestParseError(
            "no cyclictest thread found in the text (expected 'T: n ...' lines or a '# Histogram')"
        )
    if nthreads > MAX_THREADS:
        raise CyclictestParseError(f"{nthreads} threads: cyclictest runs one per CPU")
    bucket_ids, matrix = _histogram_matrix(rows, nthreads, notes)
    threads = []
    for index in range(nthreads):
        threads.append(
            _text_thread(
                index,
                line=thread_lines.get(index),
                bucket_ids=bucket_ids,
                matrix=matrix,
                summary=summary,
                overflow_at=overflow_at,
                problems=problems,
            )
        )
    return CyclictestResult(
        source="text",
        threads=tuple(threads),
        histogram_limit_us=(int(bucket_ids.max()) + 1) if bucket_ids.size else None,
        priority=next((f["P"] for f in thread_lines.values() if "P" in f), None),
        interval_us=next((f["I"] for f in thread_lines.values() if "I" in f), None),
        notes=tuple(notes),
        read_problems=tuple(problems),
    )


def _text_thread_count(
    thread_lines: Mapping[int, Mapping[str, int]],
    rows: list[list[int]],
    summary: Mapping[str, list[int]],
) -> int:
    if thread_lines:
        return max(thread_lines) + 1
    # "# Min Latencies" never carries the --histofall sum column; prefer it.
    for key in ("Min Latencies", "Avg Latencies"):
        if summary.get(key):
            return len(summary[key])
    if rows:
        return len(rows[0]) - 1
    return 0


def _histogram_matrix(
    rows: list[list[int]], nthreads: int, notes: list[str]
) -> tuple[IntArray, npt.NDArray[np.int64]]:
    """Bucket ids and an (n_buckets, nthreads) count matrix; extra columns (-H sum) dropped."""
    if not rows:
        return _EMPTY, np.zeros((0, nthreads), dtype=np.int64)
    width = nthreads + 1
    usable = [row[:width] for row in rows if len(row) >= width]
    if len(usable) != len(rows):
        notes.append(f"{len(rows) - len(usable)} histogram line(s) with missing columns skipped")
    if not usable:
        return _EMPTY, np.zeros((0, nthreads), dtype=np.int64)
    table = np.array(usable, dtype=np.int64)
    return table[:, 0], table[:, 1:]


def _text_thread(
    index: int,
    *,
    line: Mapping[str, int] | None,
    bucket_ids: IntArray,
    matrix: npt.NDArray[np.int64],
    summary: Mapping[str, list[int]],
    overflow_at: Mapping[int, tuple[int, ...]],
    problems: list[str],
) -> ThreadLatency:
    def summary_value(key: str) -> int | None:
        values = summary.get(key)
        return values[index] if values is not None and index < len(values) else None

    buckets, counts = _EMPTY, _EMPTY
    if bucket_ids.size:
        buckets, counts = _normalise_buckets(
            bucket_ids, matrix[:, index], problems, f"thread {index}"
        )
    has_histogram = bool(bucket_ids.size) or "Total" in summary
    overflows = summary_value("Histogram Overflows")
    if overflows is None and has_histogram:
        overflows = 0
    in_range = int(counts.sum())
    total = summary_value("Total")
    if total is None:
        total = in_range
    elif total < in_range:
        problems.append(
            f"thread {index}: histogram holds {in_range} samples but '# Total' is {total}"
        )
    cycles: int | None = line.get("C") if line else None
    counted = cycles is not None or has_histogram
    if cycles is None:
        # Without "C:" or a histogram (the guide's short form) the count is unknown:
        # 0, with the line's statistics kept.
        cycles = total + (overflows or 0)
    elif has_histogram and cycles < in_range:
        problems.append(f"thread {index}: histogram holds {in_range} samples but C: is {cycles}")

    def pick(line_key: str, summary_key: str) -> float | None:
        value = summary_value(summary_key)
        if value is None and line is not None:
            value = line.get(line_key)
        return None if value is None else float(value)

    empty = counted and cycles == 0
    min_us = pick("Min", "Min Latencies")
    if empty or (min_us is not None and min_us >= _UNSET_MIN):
        min_us = None
    return ThreadLatency(
        index=index,
        cpu=None,
        cycles=cycles,
        min_us=min_us,
        avg_us=None if empty else pick("Avg", "Avg Latencies"),
        max_us=None if empty else pick("Max", "Max Latencies"),
        buckets=buckets,
        counts=counts,
        overflows=overflows if has_histogram else None,
        overflow_cycles=overflow_at.get(index, ()),
    )


# --------------------------------------------------------------------------- files


def parse_file(path: Path) -> CyclictestResult:
    """Parse ``cyclictest.json`` or ``cyclictest.txt`` by content, not by name."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CyclictestParseError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if not data.strip():
        raise CyclictestParseError(f"{path}: empty file")
    try:
        if data.lstrip()[:1] == b"{":
            return parse_json(data)
        return parse_text(data)
    except CyclictestParseError as exc:
        raise CyclictestParseError(f"{path.name}: {exc}") from exc
