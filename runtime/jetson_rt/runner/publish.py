"""Results to other processes over Zenoh (``eclipse-zenoh``), and the wire format.

Key expression: ``<key_prefix>/<host>/<task>/result`` (default prefix
``jetson-rt``; ``host`` defaults to the hostname; the task is named after its
model in the Ansible role). Subscribe to ``jetson-rt/**`` for every host.

Payload (little endian), version 1.

The fixed part (:data:`FIXED`): magic, version (u16), flags (u16: bit 0 deadline
met, bit 1 capture time known), header size in bytes (u32, where the first
tensor's data starts), seq, frame id, capture / start / end / publish times
(i64 ns, CLOCK_MONOTONIC of the publishing host), publish wall time (i64 ns,
CLOCK_REALTIME, for subscribers on other hosts), deadline (i64 ns), tier (u16),
tensor count (u16). Then the task and model names (u16 length + UTF-8), then per
tensor: name (u16 length + UTF-8), numpy dtype string (u8 length + ASCII, e.g.
``<f4``), rank (u8), dims (u32 each), data offset from the payload start (u64)
and size (u64). Tensor data follows, each 64-byte aligned, C order.

Nothing is allocated per result on our side in steady state: each (task, tier)
gets one preallocated message whose names, dtypes and shapes are written once;
per result the fixed fields are packed in place and the outputs copied, on the
publisher's thread, from the tier's own output arrays into numpy views of the
message (the loop copies nothing for the publisher). If the tier started its
next inference during that copy (``Tier.epoch`` changed), the message may be
torn: it is not sent, and counted as ``overwritten``. Zenoh copies the bytes into its own buffer on
``put`` (``congestion_control=DROP``, ``express=True``: a slow network drops
rather than blocks). Zenoh's shared-memory transport is not used: its Python
payloads would have to be allocated per message from a ``ShmProvider``.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from jetson_rt.errors import PlatformError
from jetson_rt.log import logger
from jetson_rt.runner.histogram import LatencyHistogram
from jetson_rt.runner.results import Result, ResultQueue

if TYPE_CHECKING:
    from jetson_rt.runner.dataconfig import PublishConfig
    from jetson_rt.runner.loop import Task, Tier

Array = npt.NDArray[np.generic]

MAGIC = b"JRTR"
VERSION = 1
FLAG_MET = 1
FLAG_CAPTURE = 2
# magic, version, flags, header size, seq, frame id, capture, start, end, publish,
# publish wall time, deadline, tier, tensor count
FIXED = struct.Struct("<4sHHIqqqqqqqqHH")
ALIGN = 64
PUBLISHED_STAGE = "capture_to_published"
RESULT_TO_PUBLISHED = "result_to_published"


def import_zenoh() -> Any:
    try:
        import zenoh  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError as exc:
        raise PlatformError(
            "publishing results needs eclipse-zenoh: pip install 'jetson-rt[publish]' "
            "(the Ansible role installs it when inference_runtime_publish is on)"
        ) from exc
    return zenoh


def zenoh_config(
    mode: str, connect: Sequence[str], listen: Sequence[str], multicast: bool = True
) -> Any:
    zenoh = import_zenoh()
    config = zenoh.Config()
    config.insert_json5("mode", f'"{mode}"')
    if connect:
        config.insert_json5("connect/endpoints", _json_list(connect))
    if listen:
        config.insert_json5("listen/endpoints", _json_list(listen))
    if not multicast:
        config.insert_json5("scouting/multicast/enabled", "false")
    return config


def _json_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def key_for(prefix: str, host: str, task: str) -> str:
    return f"{prefix}/{host}/{task}/result"


def host_chunk(host: str) -> str:
    name = host or socket.gethostname().split(".")[0]
    return "".join(ch if ch.isalnum() or ch in "_.-" else "_" for ch in name) or "host"


def _pad(size: int) -> int:
    return (size + ALIGN - 1) // ALIGN * ALIGN


class Message:
    """One preallocated payload for a (task, tier): static table, in-place fields and data."""

    def __init__(self, task: str, model: str, outputs: Sequence[tuple[str, Array]]) -> None:
        table = bytearray()
        for text in (task, model):
            raw = text.encode()
            table += struct.pack("<H", len(raw)) + raw
        layout: list[tuple[int, int]] = []
        entries: list[tuple[bytes, bytes, tuple[int, ...], int]] = []
        for label, array in outputs:
            dtype = array.dtype.str.encode()
            entries.append((label.encode(), dtype, tuple(array.shape), array.nbytes))
        table_size = sum(
            2 + len(name) + 1 + len(dtype) + 1 + 4 * len(shape) + 16
            for name, dtype, shape, _ in entries
        )
        header_size = _pad(FIXED.size + len(table) + table_size)
        offset = header_size
        for name, dtype, shape, nbytes in entries:
            table += struct.pack("<H", len(name)) + name + struct.pack("<B", len(dtype)) + dtype
            table += struct.pack("<B", len(shape)) + struct.pack(f"<{len(shape)}I", *shape)
            table += struct.pack("<QQ", offset, nbytes)
            layout.append((offset, nbytes))
            offset = _pad(offset + nbytes)
        self.header_size = header_size
        self.buffer = bytearray(max(offset, header_size))
        self.buffer[FIXED.size : FIXED.size + len(table)] = table
        self.views: list[Array] = [
            np.frombuffer(self.buffer, dtype=array.dtype, count=array.size, offset=start).reshape(
                array.shape
            )
            for (start, _), (_, array) in zip(layout, outputs, strict=True)
        ]

    def fill(self, result: Result, publish_ns: int, wall_ns: int) -> bytearray:
        flags = FLAG_MET if result.deadline_met else 0
        if result.capture_ns:
            flags |= FLAG_CAPTURE
        FIXED.pack_into(
            self.buffer,
            0,
            MAGIC,
            VERSION,
            flags,
            self.header_size,
            result.seq,
            result.frame_id,
            result.capture_ns,
            result.start_ns,
            result.end_ns,
            publish_ns,
            wall_ns,
            result.deadline_ns,
            result.tier,
            len(self.views),
        )
        for view, array in zip(self.views, result.outputs.values(), strict=True):
            np.copyto(view, array)
        return self.buffer


@dataclass
class Received:
    """A decoded payload: the result and the publisher's clocks."""

    result: Result
    publish_ns: int
    publish_wall_ns: int
    version: int


def decode(payload: bytes | bytearray | memoryview) -> Received:
    """Parse one payload (views into ``payload``); ValueError if it is not one of ours."""
    data = memoryview(payload)
    if len(data) < FIXED.size:
        raise ValueError(f"payload of {len(data)} bytes is shorter than the header")
    (
        magic,
        version,
        flags,
        header_size,
        seq,
        frame_id,
        capture,
        start,
        end,
        publish,
        wall,
        deadline,
        tier,
        count,
    ) = FIXED.unpack_from(data, 0)
    if magic != MAGIC:
        raise ValueError("not a jetson-rt result (bad magic)")
    if version != VERSION:
        raise ValueError(f"result format version {version}; this reader knows {VERSION}")
    pos = FIXED.size
    names: list[str] = []
    for _ in range(2):
        (length,) = struct.unpack_from("<H", data, pos)
        names.append(bytes(data[pos + 2 : pos + 2 + length]).decode())
        pos += 2 + length
    outputs: dict[str, Array] = {}
    for _ in range(count):
        (length,) = struct.unpack_from("<H", data, pos)
        name = bytes(data[pos + 2 : pos + 2 + length]).decode()
        pos += 2 + length
        (length,) = struct.unpack_from("<B", data, pos)
        dtype = np.dtype(bytes(data[pos + 1 : pos + 1 + length]).decode())
        pos += 1 + length
        (rank,) = struct.unpack_from("<B", data, pos)
        shape = struct.unpack_from(f"<{rank}I", data, pos + 1)
        pos += 1 + 4 * rank
        offset, nbytes = struct.unpack_from("<QQ", data, pos)
        pos += 16
        if offset + nbytes > len(data) or offset < header_size:
            raise ValueError(f"tensor {name!r} lies outside the payload")
        outputs[name] = np.frombuffer(
            data, dtype=dtype, count=nbytes // dtype.itemsize, offset=offset
        ).reshape(shape)
    result = Result(
        task=names[0],
        model=names[1],
        tier=tier,
        seq=seq,
        frame_id=frame_id,
        capture_ns=capture if flags & FLAG_CAPTURE else 0,
        start_ns=start,
        end_ns=end,
        deadline_ns=deadline,
        deadline_met=bool(flags & FLAG_MET),
        outputs=outputs,
    )
    return Received(result, publish, wall, version)


def _named_outputs(tier: Tier) -> list[tuple[str, Array]]:
    return list(zip(tier.output_names, tier.outputs, strict=True))


class ZenohPublisher:
    """A result consumer that puts every result it keeps up with on Zenoh."""

    def __init__(self, config: PublishConfig) -> None:
        self.config = config
        self.name = "zenoh"
        # In place: the loop copies nothing for the publisher; it copies the outputs
        # into the message and drops them if the tier started its next inference.
        self.queue = ResultQueue(self.name, config.queue, copy=False)
        self.host = host_chunk(config.host)
        self.published = 0
        self.errors = 0
        self.last_error = ""
        self.status = "not started"
        self._zenoh = import_zenoh()
        self._session: Any = None
        self._publishers: list[Any] = []
        self._messages: list[list[Message]] = []
        self._published_hist: list[LatencyHistogram | None] = []
        self._app_hist: list[LatencyHistogram] = []
        self._thread: threading.Thread | None = None
        self._stop = False
        self.keys: list[str] = []

    def bind(self, tasks: Sequence[Task]) -> None:
        """Messages, keys and the per-task histograms (before results flow)."""
        self._messages = [
            [Message(task.name, tier.name, _named_outputs(tier)) for tier in task.tiers]
            for task in tasks
        ]
        self.keys = [key_for(self.config.key_prefix, self.host, task.name) for task in tasks]
        self._published_hist = []
        self._app_hist = []
        for task in tasks:
            published = task.hist.setdefault(PUBLISHED_STAGE, LatencyHistogram())
            self._published_hist.append(published)
            self._app_hist.append(task.hist.setdefault(RESULT_TO_PUBLISHED, LatencyHistogram()))

    def start(self) -> None:
        zenoh = self._zenoh
        config = self.config
        try:
            self._session = zenoh.open(zenoh_config(config.mode, config.connect, config.listen))
            self._publishers = [
                self._session.declare_publisher(
                    key,
                    congestion_control=zenoh.CongestionControl.DROP,
                    express=True,
                    priority=zenoh.Priority.DATA_HIGH,
                )
                for key in self.keys
            ]
        except Exception as exc:  # zenoh.ZError: endpoint unusable
            self.status = f"unavailable: {exc}"
            logger.error("result publishing over Zenoh is %s", self.status)
            return
        self.status = "publishing"
        logger.info("publishing results on %s", ", ".join(self.keys))
        self._thread = threading.Thread(target=self._run, name="jetson-rt-publish", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop = True
        self.queue.close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        for publisher in self._publishers:
            try:
                publisher.undeclare()
            except Exception as exc:
                logger.debug("undeclaring a Zenoh publisher: %s", exc)
        self._publishers = []
        if self._session is not None:
            self._session.close()
            self._session = None
        if self.status == "publishing":
            self.status = "stopped"

    def _run(self) -> None:
        queue = self.queue
        clock = time.perf_counter_ns
        wall = time.time_ns
        names = {key.rsplit("/", 2)[-2]: index for index, key in enumerate(self.keys)}
        while True:
            if not queue.wait(0.5):
                if self._stop:
                    return
                continue
            result = queue.peek()
            while result is not None:
                index = names[result.task]
                message = self._messages[index][result.tier]
                now = clock()
                payload = message.fill(result, now, wall())
                if not queue.intact():
                    queue.release()
                    result = queue.peek()
                    continue
                try:
                    self._publishers[index].put(payload)
                except Exception as exc:
                    self.errors += 1
                    self.last_error = str(exc)
                    if self.errors == 1:
                        logger.error("publishing a result failed: %s", exc)
                else:
                    self.published += 1
                    done = clock()
                    if result.capture_ns:
                        hist = self._published_hist[index]
                        if hist is not None:
                            hist.record(done - result.capture_ns)
                    self._app_hist[index].record(done - result.end_ns)
                queue.release()
                result = queue.peek()

    def describe(self) -> dict[str, object]:
        info = self.queue.describe()
        info.update(
            kind="zenoh",
            status=self.status,
            keys=self.keys,
            published=self.published,
            errors=self.errors,
            last_error=self.last_error or None,
            mode=self.config.mode,
            connect=list(self.config.connect),
        )
        return info
