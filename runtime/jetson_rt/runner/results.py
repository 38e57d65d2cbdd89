"""Results out of the loop: to callbacks, iterators and publishers, never blocking it.

Every completed inference becomes a :class:`Result`: the task and model that
produced it, the tier, the frame number, the capture / start / end times
(CLOCK_MONOTONIC ns, the ``time.perf_counter_ns`` clock on Linux), whether the
deadline was met, and the outputs by name.

Each consumer (a callback, an iterator, the Zenoh publisher) has its own
:class:`ResultQueue`: a few preallocated slots, each with its own output arrays.
The loop copies the outputs into the consumer's next free slot (``numpy.copyto``,
nothing allocated) and, if the consumer is asleep, wakes it; it never waits.
The wake-up is the release of a ``_thread`` lock used as a binary semaphore: the
GIL stays with the loop (``os.eventfd_write`` and ``os.write`` drop it for the
system call, and the consumer just woken could take it before the loop returns),
and a consumer still busy with an earlier result is not woken at all (no system
call). What is left per result is the kernel waking a thread on another CPU:
about 20-40 us on the 2-vCPU KVM guest the benchmarks ran on (not measured on
bare metal or a Jetson).

When every slot is still held (the consumer is slow) the result is dropped
*for that consumer* and counted. A consumer's callback runs on the consumer's
own thread; an exception there is counted and logged, a slow one is counted
(over ``slow_ms``), and neither touches the loop.

Validity of the output views: a result's ``outputs`` point into the consumer's
slot, which is handed back to the loop when the callback returns (iterator: on
the next ``next()``). Until then the data cannot change; after that the slot is
reused. Call :meth:`Result.copy` to keep a result longer.
"""

from __future__ import annotations

import _thread
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from jetson_rt.log import logger
from jetson_rt.runner.histogram import LatencyHistogram

if TYPE_CHECKING:
    from jetson_rt.runner.loop import Task, Tier

Array = npt.NDArray[np.generic]


@dataclass
class Result:
    """One inference's result (see the module docstring for how long ``outputs`` live)."""

    task: str = ""
    model: str = ""
    tier: int = 0
    seq: int = 0
    frame_id: int = -1
    capture_ns: int = 0  # 0: not from a live source
    start_ns: int = 0
    end_ns: int = 0
    deadline_ns: int = 0
    deadline_met: bool = True
    outputs: Mapping[str, Array] = field(default_factory=dict)

    def copy(self) -> Result:
        """A result whose outputs are copies that stay valid for good."""
        return Result(
            task=self.task,
            model=self.model,
            tier=self.tier,
            seq=self.seq,
            frame_id=self.frame_id,
            capture_ns=self.capture_ns,
            start_ns=self.start_ns,
            end_ns=self.end_ns,
            deadline_ns=self.deadline_ns,
            deadline_met=self.deadline_met,
            outputs={name: np.array(array, copy=True) for name, array in self.outputs.items()},
        )


class _Slot:
    __slots__ = ("arrays", "epoch", "outputs", "result", "tier")

    def __init__(self, tasks: Sequence[Task], copy: bool) -> None:
        self.result = Result()
        self.tier: Tier | None = None
        self.epoch = 0
        # [task index][tier index] -> the slot's copies of that tier's outputs.
        self.arrays: list[list[list[Array]]] = []
        self.outputs: list[list[dict[str, Array]]] = []
        for task in tasks:
            per_tier_arrays: list[list[Array]] = []
            per_tier_outputs: list[dict[str, Array]] = []
            for tier in task.tiers:
                copies = (
                    [np.empty_like(array) for array in tier.outputs] if copy else list(tier.outputs)
                )
                per_tier_arrays.append(copies)
                per_tier_outputs.append(dict(zip(tier.output_names, copies, strict=True)))
            self.arrays.append(per_tier_arrays)
            self.outputs.append(per_tier_outputs)


class ResultQueue:
    """Single-producer (the loop), single-consumer slots of results; no lock, no wait.

    ``copy=False`` hands the consumer the tier's own output arrays instead of
    copies: the loop does no copy at all, and the consumer must check
    :meth:`intact` after reading them (the tier's next inference may have
    started meanwhile; its data is then discarded and counted as ``overwritten``).
    """

    def __init__(self, name: str, size: int = 4, *, copy: bool = True) -> None:
        self.name = name
        self.size = max(1, size)
        self.copy = copy
        self.overwritten = 0
        self._slots: list[_Slot] = []
        self.head = 0  # results offered and stored (loop-owned)
        self.tail = 0  # results released by the consumer (consumer-owned)
        self.dropped = 0  # results the consumer was too slow for (loop-owned)
        self.delivered = 0
        # A binary semaphore: locked means no wake-up pending. The loop releases it
        # (wakes the consumer) only while ``sleeping``; the consumer acquires it to sleep.
        self._wake = _thread.allocate_lock()
        self._wake.acquire()
        self.sleeping = False  # consumer-owned: set before it sleeps, cleared after
        self.wakeups = 0  # loop-owned: wake-ups sent (results handed to a sleeping consumer)
        self.closed = False

    def bind(self, tasks: Sequence[Task]) -> None:
        """Allocate the slots for these tasks' tiers (once, before results flow)."""
        self._slots = [_Slot(tasks, self.copy) for _ in range(self.size)]

    # --- the loop's side ------------------------------------------------------------

    def offer(  # noqa: PLR0917 - the fields of one result, passed without building a tuple
        self,
        task: Task,
        tier: Tier,
        frame_id: int,
        capture_ns: int,
        start_ns: int,
        end_ns: int,
        met: bool,
    ) -> None:
        head = self.head
        if head - self.tail >= self.size or not self._slots:
            self.dropped += 1
            return
        slot = self._slots[head % self.size]
        if self.copy:
            for copy, output in zip(slot.arrays[task.index][tier.index], tier.outputs, strict=True):
                np.copyto(copy, output)
        else:
            slot.tier = tier
            slot.epoch = tier.epoch
        result = slot.result
        result.task = task.name
        result.model = tier.name
        result.tier = tier.index
        result.seq = task.result_seq
        result.frame_id = frame_id
        result.capture_ns = capture_ns
        result.start_ns = start_ns
        result.end_ns = end_ns
        result.deadline_ns = task.deadline_ns
        result.deadline_met = met
        result.outputs = slot.outputs[task.index][tier.index]
        self.head = head + 1
        # After ``head``: a consumer that set ``sleeping`` looks at ``head`` once more
        # before it sleeps, so one of the two sees the other (the GIL orders them).
        if self.sleeping:
            self.wakeups += 1
            try:  # noqa: SIM105 - no context manager object on the loop's path
                self._wake.release()
            except RuntimeError:  # a wake-up is pending already (close())
                pass

    # --- the consumer's side ------------------------------------------------------------

    def wait(self, timeout: float | None) -> bool:
        """Block (GIL released) until a result may be there; False on timeout or close."""
        if self.tail < self.head:
            return True
        if self.closed:
            return False
        self.sleeping = True
        if self.tail < self.head:  # offered between the first look and ``sleeping``
            self.sleeping = False
            return True
        self._wake.acquire(True, -1 if timeout is None else timeout)
        self.sleeping = False
        return self.tail < self.head

    def peek(self) -> Result | None:
        """The oldest result not yet released, or None."""
        if self.tail >= self.head:
            return None
        return self._slots[self.tail % self.size].result

    def intact(self) -> bool:
        """Whether the oldest result's outputs were not overwritten since it was offered.

        Always true for a copying queue; for ``copy=False``, call it after reading
        the outputs: false means they may be torn (counted in ``overwritten``).
        """
        if self.copy:
            return True
        slot = self._slots[self.tail % self.size]
        tier = slot.tier
        if tier is None or tier.epoch == slot.epoch:
            return True
        self.overwritten += 1
        return False

    def release(self) -> None:
        """Hand the oldest slot back to the loop."""
        self.tail += 1
        self.delivered += 1

    def close(self) -> None:
        self.closed = True
        try:  # noqa: SIM105 - the same shape as the loop's wake-up
            self._wake.release()
        except RuntimeError:  # a wake-up is pending already
            pass

    def describe(self) -> dict[str, object]:
        info: dict[str, object] = {
            "queue": self.size,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "wakeups": self.wakeups,
        }
        if not self.copy:
            info["overwritten"] = self.overwritten
        return info


class CallbackConsumer:
    """Runs ``callback(result)`` on its own thread for every result it keeps up with."""

    def __init__(
        self,
        callback: Callable[[Result], object],
        *,
        name: str = "callback",
        size: int = 4,
        slow_ms: float = 10.0,
    ) -> None:
        self.callback = callback
        self.queue = ResultQueue(name, size)
        self.name = name
        self.slow_ns = int(slow_ms * 1e6)
        self.errors = 0
        self.slow = 0
        self.time = LatencyHistogram()
        self._thread: threading.Thread | None = None
        self._stop = False

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"jetson-rt-{self.name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop = True
        self.queue.close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _run(self) -> None:
        queue = self.queue
        clock = time.perf_counter_ns
        while True:
            if not queue.wait(0.5):
                if self._stop:
                    return
                continue
            result = queue.peek()
            while result is not None:
                start = clock()
                try:
                    self.callback(result)
                except Exception:
                    self.errors += 1
                    if self.errors == 1 or self.errors % 1000 == 0:
                        logger.exception(
                            "result callback %s raised (%d time(s) so far); the loop goes on",
                            self.name,
                            self.errors,
                        )
                took = clock() - start
                self.time.record(took)
                if took > self.slow_ns:
                    self.slow += 1
                queue.release()
                result = queue.peek()

    def describe(self) -> dict[str, object]:
        info = self.queue.describe()
        info.update(
            kind="callback",
            errors=self.errors,
            slow=self.slow,
            slow_ms=self.slow_ns / 1e6,
            callback_ms=self.time.summary_ms() if self.time.count else None,
        )
        return info


class ResultIterator:
    """``for result in runner.results(): ...``: results in the caller's thread.

    The previous result's views stay valid until the next ``next()``; results the
    caller was too slow for are dropped (``dropped``). Iteration ends when the
    runner stops.
    """

    def __init__(self, size: int = 4, name: str = "iterator") -> None:
        self.queue = ResultQueue(name, size)
        self.name = name
        self._holding = False

    def __iter__(self) -> Iterator[Result]:
        return self

    def __next__(self) -> Result:
        queue = self.queue
        if self._holding:
            queue.release()
            self._holding = False
        while True:
            result = queue.peek()
            if result is not None:
                self._holding = True
                return result
            if queue.closed:
                raise StopIteration
            queue.wait(0.5)

    def get(self, timeout: float) -> Result | None:
        """The next result within ``timeout`` seconds, or None."""
        queue = self.queue
        if self._holding:
            queue.release()
            self._holding = False
        deadline = time.monotonic() + timeout
        while True:
            result = queue.peek()
            if result is not None:
                self._holding = True
                return result
            left = deadline - time.monotonic()
            if left <= 0 or queue.closed:
                return None
            queue.wait(left)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        self.queue.close()

    def describe(self) -> dict[str, object]:
        info = self.queue.describe()
        info["kind"] = "iterator"
        return info


class Consumer(Protocol):
    """What the hub needs of a consumer: its queue, a name, start/stop, a description."""

    name: str
    queue: ResultQueue

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def describe(self) -> dict[str, object]: ...


class ResultHub:
    """The consumers of a runner's results; the loop calls :meth:`emit` once per result."""

    def __init__(self) -> None:
        self.queues: tuple[ResultQueue, ...] = ()
        self.consumers: list[Consumer] = []
        self._tasks: Sequence[Task] | None = None
        self._started = False

    def add(self, consumer: Consumer) -> None:
        queue = consumer.queue
        if self._tasks is not None:
            _bind(consumer, queue, self._tasks)
        self.consumers.append(consumer)
        if self._started:
            consumer.start()
        # One tuple swap: the loop sees the old or the new set, never a half one.
        self.queues = (*self.queues, queue)

    def bind(self, tasks: Sequence[Task]) -> None:
        self._tasks = tasks
        for consumer in self.consumers:
            _bind(consumer, consumer.queue, tasks)

    def start(self) -> None:
        self._started = True
        for consumer in self.consumers:
            consumer.start()

    def stop(self) -> None:
        for consumer in self.consumers:
            consumer.stop()
        self._started = False

    def describe(self) -> dict[str, object]:
        return {consumer.name: consumer.describe() for consumer in self.consumers}


def _bind(consumer: object, queue: ResultQueue, tasks: Sequence[Task]) -> None:
    queue.bind(tasks)
    bind = getattr(consumer, "bind", None)
    if bind is not None:
        bind(tasks)
