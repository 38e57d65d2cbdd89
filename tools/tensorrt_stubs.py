"""Turn the installed ``tensorrt-stubs`` distribution into stubs mypy can use.

``tensorrt-stubs`` (MIT) describes TensorRT's Python API, but as published it
cannot check anything: it has no ``py.typed`` marker (mypy treats ``tensorrt``
as untyped), ``tensorrt_bindings/tensorrt.pyi`` does not parse, and a few
declarations make whole groups of types meaningless (a module-level ``bool``
shadows the builtin, so every ``-> bool`` is an invalid type and reads as
``Any``). This tool reads the installed distribution (found through
``importlib.metadata``), applies the explicit list of fixes in :data:`FIXES`
and writes a stub-only tree with the upstream licence::

    typings/tensorrt/__init__.pyi
    typings/tensorrt_bindings/__init__.pyi
    typings/tensorrt_bindings/tensorrt.pyi
    typings/LICENSE.tensorrt-stubs

``pyproject.toml`` puts ``typings`` on mypy's ``mypy_path``; stubs found there
take precedence over site-packages and need no ``py.typed``.

The generated tree is committed rather than generated during setup: it is about
half a megabyte of text, the output is a pure function of the stubs' version and
this file, and committing it lets mypy run on a checkout without tensorrt-stubs
(TensorRT's own wheels do not install off Jetson, and the stubs pull them in
unless installed with ``--no-deps``). ``tests/unit/test_tensorrt_stubs.py``
regenerates the tree from the installed stubs and compares it with the
committed copy, so an upgrade of the stubs or an edit to a fix cannot drift
unnoticed. Each fix states how many places it must change: when upstream
changes, the tool stops instead of silently applying half a fix. Upstream's
CRLF line endings are written as LF, so the output is the same on every host.

Usage (from the repository root)::

    .venv/bin/python tools/tensorrt_stubs.py           # rewrite typings/
    .venv/bin/python tools/tensorrt_stubs.py --check   # exit 1 if typings/ is stale
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import tokenize
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "tensorrt-stubs"
# The stub files we take from the distribution, relative to its root.
STUB_FILES = (
    "tensorrt/__init__.pyi",
    "tensorrt_bindings/__init__.pyi",
    "tensorrt_bindings/tensorrt.pyi",
)
LICENSE_NAME = "LICENSE.tensorrt-stubs"
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "typings"

BINDINGS = "tensorrt_bindings/tensorrt.pyi"
PACKAGES = ("tensorrt/__init__.pyi", "tensorrt_bindings/__init__.pyi")

# Error codes mypy still reports inside the (fixed) stubs, switched off per file
# (only where they occur, so a new kind of flaw still shows). None of them
# changes a type our code sees:
#   type-arg             bare ``list``/``tuple``/``Callable`` (read as ``[Any]``)
#   override             pybind11 signatures narrower than ``object.__eq__`` or than
#                        a base class's method (the bindings really are like that)
#   assignment           ``__hash__: ClassVar[None] = None`` (typeshed's own idiom
#                        for unhashable classes), subclass attributes such as
#                        ``IActivationLayer.type: ActivationType`` over ``ILayer.type``,
#                        a ``str`` default where pybind11 converts to FallbackString
#   overload-cannot-match  pybind11 overloads that differ only at runtime
#   no-untyped-def       deprecated helpers nobody should call (``_itemsize``,
#                        ``common_enter``/``common_exit``)
DISABLED_ERROR_CODES: dict[str, tuple[str, ...]] = {
    "tensorrt/__init__.pyi": (),
    "tensorrt_bindings/__init__.pyi": ("no-untyped-def",),
    BINDINGS: ("type-arg", "override", "assignment", "overload-cannot-match"),
}


@dataclass(frozen=True)
class Fix:
    """One change to one stub file, and why it is needed.

    ``count`` is the exact number of places the fix must change in the pinned
    stubs; any other number aborts generation.
    """

    path: str
    why: str
    apply: Callable[[str], tuple[str, int]]
    count: int


def sub(pattern: str, replacement: str) -> Callable[[str], tuple[str, int]]:
    """A regular-expression substitution (multi-line mode) as a fix's ``apply``."""
    compiled = re.compile(pattern, re.MULTILINE)

    def apply(text: str) -> tuple[str, int]:
        return compiled.subn(replacement, text)

    return apply


def qualify_builtin_bool(text: str) -> tuple[str, int]:
    """Write every annotation use of ``bool`` as ``builtins.bool``.

    Works on tokens, so docstrings and comments are left alone; the module-level
    declaration ``bool: DataType`` (the only ``bool`` at the start of a line)
    stays, as ``tensorrt.bool`` is a real attribute.
    """
    lines = text.splitlines(keepends=True)
    positions: list[tuple[int, int]] = []
    previous = ""
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        # Not an attribute such as numpy.bool, and not the declaration at column 0.
        if (
            token.type == tokenize.NAME
            and token.string == "bool"
            and previous != "."
            and token.start[1] != 0
        ):
            positions.append(token.start)
        if token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT):
            previous = token.string
    for row, col in reversed(positions):
        line = lines[row - 1]
        lines[row - 1] = line[:col] + "builtins." + line[col:]
    return "".join(lines), len(positions)


def drop_self_annotations(text: str) -> tuple[str, int]:
    """Remove the annotation from ``(self: <type>`` in every ``def`` line.

    The type may hold brackets and commas (``list[tuple[list[int], bool]]``).
    """
    out: list[str] = []
    done = 0
    position = 0
    marker = "(self: "
    while (start := text.find(marker, position)) >= 0:
        end = start + len(marker)
        line_start = text.rfind("\n", 0, start) + 1
        if not text[line_start:start].lstrip().startswith("def "):
            out.append(text[position:end])  # a docstring quoting a signature
            position = end
            continue
        depth = 0
        while depth or text[end] not in ",)":
            depth += {"[": 1, "]": -1}.get(text[end], 0)
            end += 1
        out.append(text[position:start] + "(self")
        position = end
        done += 1
    out.append(text[position:])
    return "".join(out), done


FIXES: tuple[Fix, ...] = (
    # --- syntax: without these mypy stops at the file ----------------------------
    Fix(
        BINDINGS,
        "plugin methods name a parameter `in`, a keyword: rename it `in_` and make it "
        "positional-only, which is all Python code can do with it anyway",
        sub(r"\(((?:self(?:: \w+)?, )?)in: (list\[\w+\]), out:", r"(\1in_: \2, /, out:"),
        4,
    ),
    Fix(
        BINDINGS,
        "add_scale_nd's required `channel_axis` follows defaulted parameters (pybind11 "
        "allows it): one overload passes everything positionally, the other takes "
        "channel_axis by keyword after optional weights",
        sub(
            r"^    def add_scale_nd\(self, input: ITensor, mode: ScaleMode, shift: Weights = None, "
            r"scale: Weights = None, power: Weights = None, channel_axis: int\) -> IScaleLayer:$",
            "    @typing.overload\n"
            "    def add_scale_nd(self, input: ITensor, mode: ScaleMode, shift: Weights | None, "
            "scale: Weights | None, power: Weights | None, channel_axis: int) -> IScaleLayer:\n"
            "        ...\n"
            "    @typing.overload\n"
            "    def add_scale_nd(self, input: ITensor, mode: ScaleMode, "
            "shift: Weights | None = None, scale: Weights | None = None, "
            "power: Weights | None = None, *, channel_axis: int) -> IScaleLayer:",
        ),
        1,
    ),
    # --- names the stubs use but never define -------------------------------------
    Fix(
        BINDINGS,
        "`typing_extensions.Buffer` (serialised engines, caches, ONNX bytes) is used "
        "without importing typing_extensions; also import builtins for the `bool` fix "
        "below",
        sub(r"^import typing$", "import builtins\nimport typing\nimport typing_extensions"),
        1,
    ),
    Fix(
        BINDINGS,
        "`capsule` (pybind11's PyCapsule, e.g. debug-tensor addresses) is never defined",
        sub(
            r"^(__all__ = )",
            r"capsule: typing_extensions.TypeAlias = typing_extensions.CapsuleType\n\1",
        ),
        1,
    ),
    Fix(
        BINDINGS,
        "the module declares `bool: DataType` (trt.bool), shadowing the builtin: every "
        "`bool` annotation was an invalid type that mypy read as Any",
        qualify_builtin_bool,
        375,
    ),
    Fix(
        BINDINGS,
        "OnnxParser.get_error returns a ParserError (the class is in these stubs; the "
        "generator wrote `...`), so parser error reports are checked",
        sub(
            r"^    def get_error\(self, index: int\) -> \.\.\.:$",
            "    def get_error(self, index: int) -> ParserError:",
        ),
        1,
    ),
    Fix(
        BINDINGS,
        "IExecutionContext.device_memory is a write-only pybind11 property, which the stub "
        "generator skipped; before TensorRT 10.1 (no set_device_memory) it is how a "
        "context is given its memory",
        sub(
            r"^(    debug_sync: builtins\.bool\n)(    enqueue_emits_profile: )",
            r"\1    device_memory: int\n\2",
        ),
        1,
    ),
    Fix(
        BINDINGS,
        "`...` where the stub generator could not name a type is not a type: say Any "
        "(return types)",
        sub(r"\) -> \.\.\.:$", ") -> typing.Any:"),
        13,
    ),
    Fix(
        BINDINGS,
        "`...` as a parameter type: Any",
        sub(r"(\w+): \.\.\.([,)])", r"\1: typing.Any\2"),
        17,
    ),
    Fix(
        BINDINGS,
        "`...` as an attribute type: Any",
        sub(r"^(    \w+): \.\.\.$", r"\1: typing.Any"),
        15,
    ),
    # --- declarations that contradict the bindings -----------------------------------
    Fix(
        BINDINGS,
        "`x: T = None` is an implicit Optional, which strict mypy rejects: say `T | None`",
        sub(r"(\w+): ([\w.]+) = None([,)])", r"\1: \2 | None = None\3"),
        12,
    ),
    Fix(
        BINDINGS,
        "deserialize_cuda_engine returns None when the engine cannot be deserialised "
        "(its docstring says so); the stubs promise an engine, hiding missing checks",
        sub(
            r"^(    def deserialize_cuda_engine\(self, \w+: [\w.]+\)) -> ICudaEngine:$",
            r"\1 -> ICudaEngine | None:",
        ),
        3,
    ),
    Fix(
        BINDINGS,
        "build_serialized_network returns None when the build fails (nullptr in the C++ "
        "API it wraps)",
        sub(
            r"^(    def build_serialized_network\(self, network: INetworkDefinition, "
            r"config: IBuilderConfig\)) -> IHostMemory:$",
            r"\1 -> IHostMemory | None:",
        ),
        1,
    ),
    Fix(
        BINDINGS,
        "create_execution_context returns None when the context cannot be created "
        "(nullptr in the C++ API, e.g. out of device memory)",
        sub(
            r"^(    def create_execution_context\(self, [^)]*\)) -> IExecutionContext:$",
            r"\1 -> IExecutionContext | None:",
        ),
        2,
    ),
    Fix(
        BINDINGS,
        "TensorRT ends calibration when get_batch returns None (its documented protocol); "
        "the stubs allow only a list, so a correct calibrator fails to type-check",
        sub(
            r"^    def get_batch\(self, names: list\[str\]\) -> list\[int\]:$",
            "    def get_batch(self, names: list[str]) -> list[int] | None:",
        ),
        5,
    ),
    Fix(
        BINDINGS,
        "read_calibration_cache returns None when there is no cache (documented: "
        "calibration then runs); the stubs require a buffer",
        sub(
            r"^    def read_calibration_cache\(self\) -> typing_extensions\.Buffer:$",
            "    def read_calibration_cache(self) -> typing_extensions.Buffer | None:",
        ),
        5,
    ),
    Fix(
        BINDINGS,
        "`self: SomeType` on methods pybind11 shares between classes (IPluginV3 mixins, "
        "Logger.Severity, list-like NodeIndices/Permutation/SubGraphCollection with "
        "`self: list[int]`) is an invalid self type: drop it, self is the class itself",
        drop_self_annotations,
        66,
    ),
    Fix(
        BINDINGS,
        "__enter__ and __exit__ are declared @staticmethod over a parameter `this`, so "
        "`with builder:` fails to type-check; they are plain methods (tensorrt assigns "
        "common_enter/common_exit to the classes)",
        sub(
            r"^    @staticmethod\n    def __enter__\(this\):$",
            "    def __enter__(self) -> typing_extensions.Self:",
        ),
        9,
    ),
    Fix(
        BINDINGS,
        "__exit__: as __enter__, typed",
        sub(
            r"^    @staticmethod\n    def __exit__\(this, exc_type, exc_value, traceback\):$",
            "    def __exit__(self, exc_type: object, exc_value: object, "
            "traceback: object) -> None:",
        ),
        9,
    ),
    Fix(
        BINDINGS,
        "IErrorRecorder.MAX_DESC_LENGTH is a class constant, not a property without self",
        sub(
            r"^    @property\n    def MAX_DESC_LENGTH\(\) -> int:\n        \.\.\.$",
            "    MAX_DESC_LENGTH: typing.ClassVar[int]",
        ),
        1,
    ),
    Fix(
        BINDINGS,
        "the ONNX parser's ErrorCode declares `name` as an untyped static function; as on "
        "every pybind11 enum it is a str property",
        sub(
            r"^    @staticmethod\n    def name\(\*args, \*\*kwargs\):$",
            "    @property\n    def name(self) -> str:",
        ),
        1,
    ),
    Fix(
        BINDINGS,
        "DataType.itemsize has no return type; it is a size in bytes, fractional for "
        "sub-byte types such as FP4 (documented)",
        sub(r"^    def itemsize\(self\):$", "    def itemsize(self) -> float:"),
        1,
    ),
    Fix(
        BINDINGS,
        "IHostMemory's buffer protocol is unannotated; typed as typeshed's Buffer protocol "
        "so memoryview(engine_bytes) is checked",
        sub(
            r"^    def __buffer__\(self, flags\):$",
            "    def __buffer__(self, flags: int, /) -> memoryview:",
        ),
        1,
    ),
    Fix(
        BINDINGS,
        "__release_buffer__: as __buffer__",
        sub(
            r"^    def __release_buffer__\(self, buffer\):$",
            "    def __release_buffer__(self, buffer: memoryview, /) -> None:",
        ),
        1,
    ),
    Fix(
        "tensorrt_bindings/__init__.pyi",
        "nptype is how code maps a tensor's DataType to numpy; unannotated, every call is "
        "an untyped call under strict mypy",
        sub(r"^def nptype\(trt_type\):$", "def nptype(trt_type: DataType) -> type[numpy.generic]:"),
        1,
    ),
    Fix(
        "tensorrt_bindings/__init__.pyi",
        "volume: annotated for the same reason",
        sub(r"^def volume\(iterable\):$", "def volume(iterable: typing.Iterable[int]) -> int:"),
        1,
    ),
    Fix(
        "tensorrt_bindings/__init__.pyi",
        "imports for the two annotations above",
        sub(r"^import sys as sys$", "import sys as sys\nimport typing\nimport numpy"),
        1,
    ),
    *(
        Fix(
            package,
            "tensorrt_libs (the wheel holding TensorRT's shared libraries) has no stubs: "
            "declare it as a module instead of importing it",
            sub(
                r"^import tensorrt_libs as tensorrt_libs$",
                "import types\ntensorrt_libs: types.ModuleType",
            ),
            1,
        )
        for package in PACKAGES
    ),
)


class StubsError(RuntimeError):
    """The installed stubs are missing or differ from what the fixes expect."""


def distribution() -> metadata.Distribution:
    try:
        return metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError as exc:
        raise StubsError(
            f"{DISTRIBUTION} is not installed: pip install --no-deps {DISTRIBUTION}"
        ) from exc


def _read(dist: metadata.Distribution, relative: str) -> str:
    for file in dist.files or ():
        if file.as_posix() == relative:
            return Path(str(dist.locate_file(file))).read_text(encoding="utf-8")
    raise StubsError(f"{DISTRIBUTION} {dist.version} has no {relative}")


def _license(dist: metadata.Distribution) -> str:
    for file in dist.files or ():
        parts = file.parts
        if parts[0].endswith(".dist-info") and file.name.startswith(("LICENSE", "LICENCE")):
            return Path(str(dist.locate_file(file))).read_text(encoding="utf-8")
    raise StubsError(f"{DISTRIBUTION} {dist.version} ships no licence file")


def _header(version: str, codes: tuple[str, ...]) -> str:
    header = (
        f"# Generated by tools/tensorrt_stubs.py from {DISTRIBUTION} {version} (MIT: see\n"
        f"# ../{LICENSE_NAME}). Do not edit: change the fixes in the tool and regenerate.\n"
    )
    if codes:
        header += f'# mypy: disable-error-code="{",".join(codes)}"\n'
    return header


def generate(dist: metadata.Distribution | None = None) -> dict[str, str]:
    """Relative path -> text of every file the tool writes."""
    dist = dist or distribution()
    texts = {relative: _read(dist, relative).replace("\r\n", "\n") for relative in STUB_FILES}
    for fix in FIXES:
        texts[fix.path], changed = fix.apply(texts[fix.path])
        if changed != fix.count:
            raise StubsError(
                f"{DISTRIBUTION} {dist.version}: the fix for {fix.path} ({fix.why}) changed "
                f"{changed} places, expected {fix.count}: review the fixes against these stubs"
            )
    out = {}
    for relative, text in texts.items():
        out[relative] = _header(dist.version, DISABLED_ERROR_CODES[relative]) + text
    out[LICENSE_NAME] = _license(dist)
    return out


def stale(output: Path, files: dict[str, str]) -> list[str]:
    """Paths under ``output`` that differ from ``files``, or are missing or extra."""
    differ = [
        relative
        for relative, text in files.items()
        if not (output / relative).is_file()
        or (output / relative).read_text(encoding="utf-8") != text
    ]
    extra = [
        relative.as_posix()
        for relative in (path.relative_to(output) for path in output.rglob("*") if path.is_file())
        if relative.as_posix() not in files
        # caches that tools leave behind are not part of the tree
        and not any(part.startswith(".") or part == "__pycache__" for part in relative.parts)
    ]
    return sorted(differ + extra)


def write(output: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        target = output / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", newline="\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--check", action="store_true", help="report whether the output is up to date"
    )
    args = parser.parse_args(argv)
    try:
        files = generate()
    except StubsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        differing = stale(args.output, files)
        for relative in differing:
            print(f"stale: {args.output / relative}", file=sys.stderr)
        return 1 if differing else 0
    write(args.output, files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
