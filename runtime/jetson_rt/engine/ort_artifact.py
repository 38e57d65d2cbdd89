"""What an ONNX Runtime-optimised model depends on, and its bytes made reproducible.

At ``--ort-optimization all`` ONNX Runtime rewrites convolutions into its NCHWc
layout (``com.microsoft.nchwc`` nodes) blocked for the build host's vector
width: 16 floats with AVX-512, 8 otherwise on x86-64. Such a model runs wrong
or not at all on a CPU with another width, so the manifest records the CPU
features the MLAS kernels choose by, and :func:`refuse_cpu_mismatch` refuses to
load the artifact where they differ. Levels up to ``extended`` (alias
``portable``) make no such assumption.

ONNX Runtime saves an optimised graph with its nodes in an arbitrary
topological order and with generated names (``reorder_token_12``) numbered in
that order, so three builds give three sha256s. :func:`normalise_model` sorts
the nodes by a digest of what they compute and renumbers the generated names
in that order: identical inputs give identical bytes.
"""

from __future__ import annotations

import hashlib
import heapq
import platform
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jetson_rt.errors import EngineError

# The /proc/cpuinfo flags MLAS selects its kernels (and the NCHWc block size) by.
_RELEVANT_FLAGS: dict[str, frozenset[str]] = {
    "x86_64": frozenset(
        {
            "sse4_1",
            "avx",
            "avx2",
            "fma",
            "f16c",
            "avx512f",
            "avx512bw",
            "avx512dq",
            "avx512vl",
            "avx512_vnni",
            "avx_vnni",
            "amx_tile",
            "amx_int8",
            "amx_bf16",
        }
    ),
    "aarch64": frozenset({"asimd", "asimddp", "asimdhp", "fphp", "i8mm", "bf16", "sve", "sve2"}),
}
# Features whose presence changes the layout itself (NCHWc block 16 instead of 8):
# an artifact built without them is refused on a host that has them, too.
_LAYOUT_DECIDING = frozenset({"avx512f"})


def cpu_features(cpuinfo: Path = Path("/proc/cpuinfo"), machine: str | None = None) -> list[str]:
    """The relevant CPU feature flags of this host, sorted."""
    machine = machine or platform.machine()
    relevant = _RELEVANT_FLAGS.get(machine, frozenset())
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    flags: set[str] = set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            flags.update(value.split())
            break
    return sorted(flags & relevant)


def cpu_dependency(cpu_specific: bool) -> str | None:
    """The ``cpu_features`` platform field of a build: ``None`` for a portable artifact."""
    if not cpu_specific:
        return None
    return ",".join(cpu_features()) or "none"


def refuse_cpu_mismatch(
    artifact: Path,
    platform_fields: Mapping[str, Any],
    *,
    host_features: Iterable[str] | None = None,
    host_machine: str | None = None,
) -> None:
    """Refuse an artifact optimised for CPU features this host does not match."""
    recorded = platform_fields.get("cpu_features")
    if not isinstance(recorded, str):
        return  # portable (or built before the field existed)
    machine = host_machine or platform.machine()
    built_on = platform_fields.get("machine")
    hint = (
        "rebuild it on this host with `jetson-rt build-engine --backend onnxruntime`, or "
        "build an artifact that travels with --ort-optimization portable"
    )
    if built_on and built_on != machine:
        raise EngineError(
            f"{artifact.name} was optimised for {built_on} (--ort-optimization all) and this "
            f"host is {machine}: {hint}"
        )
    wanted = set() if recorded == "none" else set(recorded.split(","))
    have = set(cpu_features(machine=machine) if host_features is None else host_features)
    missing = sorted(wanted - have)
    extra = sorted((have - wanted) & _LAYOUT_DECIDING)
    if missing:
        raise EngineError(
            f"{artifact.name} was optimised (--ort-optimization all) for a CPU with "
            f"{recorded}; this host lacks {', '.join(missing)}: {hint}"
        )
    if extra:
        raise EngineError(
            f"{artifact.name} was optimised (--ort-optimization all) for a CPU without "
            f"{', '.join(extra)}, whose NCHWc layout differs from this host's: {hint}"
        )


# --- reproducible bytes ---------------------------------------------------------

_TOKEN = re.compile(r"^(?P<base>.*)_token_\d+$")


class _Names:
    """Generated names (``X_token_N``, and a plain ``X`` where ``X_token_N`` exists)."""

    def __init__(self, names: set[str], keep: set[str]) -> None:
        self.keep = keep
        self.bases = {m["base"] for m in map(_TOKEN.match, names) if m is not None}
        self.renamed: dict[str, str] = {}

    def base(self, name: str) -> str | None:
        if not name or name in self.keep:
            return None
        match = _TOKEN.match(name)
        if match is not None:
            return match["base"]
        return name if name in self.bases else None

    def stable(self, name: str) -> str:
        """The name with any generated number left out (for digests)."""
        base = self.base(name)
        return name if base is None else f"{base}_token_"

    def rename(self, name: str) -> str:
        base = self.base(name)
        if base is None:
            return name
        if name not in self.renamed:
            self.renamed[name] = f"{base}_token_{len(self.renamed)}"
        return self.renamed[name]


def _all_names(graph: Any) -> set[str]:
    names: set[str] = set()
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
        names.add(node.name)
        for attr in node.attribute:
            for sub in (attr.g, *attr.graphs) if attr.HasField("g") else attr.graphs:
                names |= _all_names(sub)
    names.update(t.name for t in graph.initializer)
    return names


def _canonical_order(graph: Any, names: _Names) -> list[Any]:
    nodes = list(graph.node)
    producer: dict[str, tuple[int, int]] = {}
    for index, node in enumerate(nodes):
        for slot, out in enumerate(node.output):
            if out:
                producer[out] = (index, slot)
    constants = {
        t.name: hashlib.sha256(t.SerializeToString()).hexdigest() for t in graph.initializer
    }
    users: list[list[int]] = [[] for _ in nodes]
    waiting = [0] * len(nodes)
    for index, node in enumerate(nodes):
        sources = {producer[name][0] for name in node.input if name in producer}
        sources.discard(index)
        for source in sources:
            users[source].append(index)
        waiting[index] = len(sources)

    # A node's digest covers its op, attributes and, through its inputs, the
    # digests of everything upstream: the order ONNX Runtime happened to save
    # the graph in does not enter it. Computed in topological order (no recursion).
    digests: dict[int, str] = {}

    def digest(index: int) -> str:
        node = nodes[index]
        h = hashlib.sha256(f"{node.domain}::{node.op_type}".encode())
        for attr in sorted(node.attribute, key=lambda a: a.name):
            h.update(attr.SerializeToString())
        for name in node.input:
            source = producer.get(name)
            if source is not None and source[0] != index:
                h.update(f"|n{digests[source[0]]}:{source[1]}".encode())
            else:
                h.update(f"|t{names.stable(name)}:{constants.get(name, '')}".encode())
        for out in node.output:
            h.update(f"|o{names.stable(out)}".encode())
        return h.hexdigest()

    ready = [index for index, count in enumerate(waiting) if count == 0]
    for index in ready:
        digests[index] = digest(index)
    heap = [(digests[index], index) for index in ready]
    heapq.heapify(heap)
    order: list[int] = []
    while heap:
        _, index = heapq.heappop(heap)
        order.append(index)
        for user in users[index]:
            waiting[user] -= 1
            if waiting[user] == 0:
                digests[user] = digest(user)
                heapq.heappush(heap, (digests[user], user))
    if len(order) != len(nodes):
        raise EngineError("the optimised graph has a cycle: ONNX Runtime wrote an invalid model")
    return [nodes[index] for index in order]


def _rename_graph(graph: Any, names: _Names, onnx: Any) -> None:
    for node in graph.node:
        for slot, name in enumerate(node.input):
            node.input[slot] = names.rename(name)
        for slot, name in enumerate(node.output):
            node.output[slot] = names.rename(name)
        node.name = names.rename(node.name)
        for attr in node.attribute:
            for sub in (attr.g, *attr.graphs) if attr.HasField("g") else attr.graphs:
                _rename_graph(sub, names, onnx)
    for tensor in graph.initializer:
        tensor.name = names.rename(tensor.name)
    for info in (*graph.value_info, *graph.input, *graph.output):
        info.name = names.rename(info.name)
    _sort_repeated(graph.initializer, onnx.TensorProto)
    _sort_repeated(graph.value_info, onnx.ValueInfoProto)


def _sort_repeated(field: Any, proto: Any) -> None:
    ordered = []
    for item in sorted(field, key=lambda item: item.name):
        copy = proto()
        copy.CopyFrom(item)
        ordered.append(copy)
    del field[:]
    field.extend(ordered)


def normalise_model(model: Any) -> Any:
    """Put ``model`` (an ONNX Runtime-optimised ``ModelProto``) in canonical form, in place.

    Graph inputs and outputs keep their names; only names ONNX Runtime generated
    are renumbered. The computation is unchanged.
    """
    from jetson_rt.engine.onnx_check import import_onnx

    onnx = import_onnx()
    graph = model.graph
    keep = {info.name for info in (*graph.input, *graph.output)}
    names = _Names(_all_names(graph), keep)
    ordered = []
    for node in _canonical_order(graph, names):
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        ordered.append(copy)
    del graph.node[:]
    graph.node.extend(ordered)
    _rename_graph(graph, names, onnx)
    return model


def layout_domains(model: Any) -> list[str]:
    """The CPU-layout op domains the optimised model uses (``com.microsoft.nchwc``)."""
    return sorted({node.domain for node in model.graph.node if node.domain.endswith(".nchwc")})
