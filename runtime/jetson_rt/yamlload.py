"""The one way jetson-rt reads YAML it did not write: strict, bounded, one-line errors.

PyYAML's ``safe_load`` builds only plain data, but it still expands aliases
(a few lines can name a billion items), keeps the last of two equal keys
without a word, recurses without limit and fails with multi-line messages or
``UnicodeDecodeError``. :func:`load_yaml` and :func:`parse_yaml` refuse all of
that with a :class:`~jetson_rt.errors.ConfigError` that names the file, the
line and the problem, and never echo an expanded alias:

- only a regular file of at most :data:`MAX_BYTES` is read (a FIFO or a device
  would block or never end);
- the text must be UTF-8 (a byte-order mark is allowed);
- aliases (``*name``) are refused: a configuration gains nothing from them and
  they are how a small file becomes a huge document; anchors alone are harmless;
- a key given twice in one mapping is refused;
- nesting deeper than :data:`MAX_DEPTH` is refused.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node

from jetson_rt.errors import ConfigError

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64

__all__ = ["MAX_BYTES", "MAX_DEPTH", "load_yaml", "parse_yaml"]


class _StrictLoader(yaml.SafeLoader):
    """``SafeLoader`` without aliases, duplicate keys or unbounded nesting."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise ComposerError(
                None,
                None,
                f"aliases are not accepted (*{_clip(str(event.anchor))}): write the value out",
                event.start_mark,
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark
                )
            node: Node | None = super().compose_node(parent, index)
            return node
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[object, int] = {}
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in first_line
            except TypeError:
                raise ConstructorError(
                    None, None, "a mapping key must be a plain value", key_node.start_mark
                ) from None
            if duplicate:
                raise ConstructorError(
                    None,
                    None,
                    f"key {_clip(repr(key))} is given twice (first on line {first_line[key] + 1})",
                    key_node.start_mark,
                )
            first_line[key] = key_node.start_mark.line
        result: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return result


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return ""
    return f"line {mark.line + 1}, column {mark.column + 1}: "


def _problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        parts = [part for part in (exc.context, exc.problem) if part]
        text = ", ".join(parts) if parts else "invalid YAML"
    else:
        text = str(exc)
    return " ".join(text.split())


def parse_yaml(text: str, origin: str = "<string>") -> Any:
    """One YAML document from ``text`` (see the module doc for what is refused)."""
    loader: _StrictLoader | None = None
    try:
        loader = _StrictLoader(text)  # reads the stream: may refuse a character already
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin} is not valid YAML: {_where(exc)}{_problem(exc)}") from None
    except (ValueError, OverflowError) as exc:
        # int() of a number with thousands of digits, a timestamp out of range
        raise ConfigError(f"{origin} is not valid YAML: {_clip(str(exc), 120)}") from None
    except RecursionError:
        raise ConfigError(f"{origin} is not valid YAML: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_yaml(path: Path, what: str = "file") -> Any:
    """The document in ``path``; ``what`` names it in errors (``runner configuration``)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise ConfigError(f"cannot read {what} {path}: not a regular file")
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > MAX_BYTES:
            raise ConfigError(
                f"{what} {path} is {info.st_size} bytes; at most {MAX_BYTES} are read"
            )
        try:
            data = handle.read(MAX_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{what} {path} is larger than {MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{what} {path} is not UTF-8 text: byte 0x{data[exc.start]:02x} on line {line}"
        ) from None
    if "\x00" in text:
        raise ConfigError(f"{what} {path} is not text: it contains a NUL byte")
    return parse_yaml(text, f"{what} {path}")
