# Copyright: jetson-rt maintainers
# Apache-2.0 (see galaxy.yml)
"""Read and edit ``/boot/extlinux/extlinux.conf`` the way L4TLauncher reads it.

JetPack 6 boots through UEFI and NVIDIA's L4TLauncher (edk2-nvidia
``Silicon/NVIDIA/Application/L4TLauncher``), not through U-Boot or syslinux, so
this follows L4TLauncher's own parser rather than the syslinux grammar:

* a line is split on LF only; every CR in it is dropped; everything from the
  first ``#`` on is a comment (also in the middle of an APPEND line); spaces
  and tabs around what is left are ignored;
* keys are matched case-sensitively, as prefixes, in this order: TIMEOUT,
  DEFAULT, MENU TITLE, LABEL, MENU LABEL, LINUX, INITRD, FDT, OVERLAYS, APPEND;
  any other line is ignored; TIMEOUT, DEFAULT and MENU TITLE may appear
  anywhere, the other keys belong to the last LABEL above them;
* at most 10 LABELs; DEFAULT names a LABEL exactly; a DEFAULT that names no
  LABEL (or no DEFAULT) boots entry 0; the first ``${cbootargs}`` in APPEND
  is deleted, and the platform's own arguments are appended at the end of
  every command line whether the token was there or not (on Orin these are
  profiler pointers, not ``root=`` or ``console=``), so every APPEND this
  module writes carries its own ``root=``.

:func:`loader_read` is that reading with nothing refused: what L4TLauncher
boots from any file (the simulated boot loader uses it). :class:`ExtlinuxConf`
reads through the same line and key rules and then refuses what is ambiguous.

Anything L4TLauncher would read differently from what the file seems to say is
refused with the line number (:class:`ExtlinuxError`): per-entry keys before
the first LABEL, a duplicate LABEL, a LABEL without LINUX, a key given twice
(L4TLauncher silently keeps the last), a key glued to its value (``FDTDIR x``
reads as FDT ``DIR x``), more than 10 entries.

Edits keep every byte they do not need to touch: comments, blank lines,
indentation (tabs or spaces), line endings (LF or CRLF), unknown lines and
the order and spacing of untouched kernel arguments. Parsing an unedited file
and rendering it gives back the same bytes.

Pure standard library, Python 3.10 (the targets' system Python).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ansible_collections.jetson_rt.fleet.plugins.module_utils.cpulist import (
    CpuListError,
    complement,
    format_cpulist,
    parse_cpulist,
)

__all__ = [
    "CBOOTARGS",
    "DEFAULT_PATH",
    "MAX_ENTRIES",
    "ExtlinuxConf",
    "ExtlinuxError",
    "LoaderConfig",
    "LoaderEntry",
    "isolation_args",
    "loader_path",
    "loader_read",
    "parse_args",
]

DEFAULT_PATH = "/boot/extlinux/extlinux.conf"
MAX_ENTRIES = 10  # MAX_EXTLINUX_OPTIONS in L4TLauncher.h
CBOOTARGS = "${cbootargs}"

# L4TLauncher tests the keys in this order, each as a prefix of the cleaned line.
_KEY_ORDER = (
    "TIMEOUT",
    "DEFAULT",
    "MENU TITLE",
    "LABEL",
    "MENU LABEL",
    "LINUX",
    "INITRD",
    "FDT",
    "OVERLAYS",
    "APPEND",
)
_GLOBAL_KEYS = ("TIMEOUT", "DEFAULT", "MENU TITLE")
# Where a key missing from an entry is inserted: NVIDIA's and Jetson-IO's layout.
ENTRY_KEYS = ("MENU LABEL", "LINUX", "FDT", "INITRD", "APPEND", "OVERLAYS")
_PATH_KEYS = ("LINUX", "INITRD", "FDT", "OVERLAYS")
_DEFAULT_INDENT = "      "  # the stock JetPack file indents entry keys by six spaces
ISOLCPUS_FLAGS = ("nohz", "domain", "managed_irq")  # housekeeping_isolcpus_setup()
_ISOLATION_KEYS = ("isolcpus", "nohz_full", "rcu_nocbs", "irqaffinity")
_ARG_KEY = re.compile(r'[^\s="#]+\Z')


class ExtlinuxError(ValueError):
    """A file L4TLauncher would misread, or an edit that would make one."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


@dataclass(eq=False)
class _Line:
    body: str  # the line without its terminator
    eol: str  # "\r\n", "\n", or "" for a last line without one

    def clean(self) -> str:
        return _clean(self.body)


def _clean(body: str) -> str:
    body = body.replace("\r", "")
    comment = body.find("#")
    if comment >= 0:
        body = body[:comment]
    return body.strip(" \t")


def _classify(clean: str) -> tuple[str | None, str]:
    """(key, value) as L4TLauncher reads a cleaned line; key "" is an ignored line."""
    if not clean:
        return None, ""
    for key in _KEY_ORDER:
        if clean.startswith(key):
            return key, clean[len(key) :].strip(" \t")
    return "", clean


# --- L4TLauncher's reading, nothing refused -----------------------------------
# Line numbers are edk2-nvidia r36.5.1 Silicon/NVIDIA/Application/L4TLauncher/
# L4TLauncher.c; ProcessExtLinuxConfig is the same from r36.3.0 on.


@dataclass
class LoaderEntry:
    """One BootOptions[] slot as ProcessExtLinuxConfig fills it."""

    label: str
    menu_label: str | None = None
    linux: str | None = None
    initrd: str | None = None
    fdt: str | None = None
    overlays: str | None = None
    # APPEND with its first ${cbootargs} (and the spaces after it) deleted (1279-1287);
    # None when the entry has no APPEND line.
    append: str | None = None


@dataclass
class LoaderConfig:
    """What L4TLauncher knows after reading the file."""

    timeout: int
    default: str | None
    menu_title: str | None
    entries: list[LoaderEntry]

    @property
    def boot_index(self) -> int | None:
        """DEFAULT by exact StrCmp, the first entry that matches; else entry 0 (1302-1308)."""
        if not self.entries:
            return None
        for number, entry in enumerate(self.entries):
            if entry.label == self.default:
                return number
        return 0


_LOADER_FIELDS = {
    "MENU LABEL": "menu_label",
    "LINUX": "linux",
    "INITRD": "initrd",
    "FDT": "fdt",
    "OVERLAYS": "overlays",
    "APPEND": "append",
}


def _decimal(text: str) -> int:
    # StrDecimalToUintn(): leading decimal digits, 0 when there are none
    digits = re.match(r"[0-9]*", text)
    return int(digits.group(0)) if digits and digits.group(0) else 0


def loader_read(text: str) -> LoaderConfig:
    """Read ``text`` exactly as L4TLauncher's ProcessExtLinuxConfig does.

    Nothing is refused: keys before the first LABEL are ignored, a key given
    twice keeps the last value, an 11th LABEL is dropped while its keys
    overwrite entry 10, a key glued to its value (``LINUX/boot/Image``) still
    matches. Paths are as written (see :func:`loader_path`).
    """
    timeout = 0
    default: str | None = None
    menu_title: str | None = None
    entries: list[LoaderEntry] = []
    for raw in text.split("\n"):
        # FileHandleReturnLine drops CRs; CleanExtLinuxLine cuts at '#' and trims (516-541)
        key, value = _classify(_clean(raw))
        if not key:
            continue
        # CheckCommandString: case-sensitive prefix match, in this order (1139, 1223-1277)
        if key == "TIMEOUT":
            timeout = _decimal(value)
        elif key == "DEFAULT":
            default = value
        elif key == "MENU TITLE":
            menu_title = value
        elif key == "LABEL":
            # only while fewer than MAX_EXTLINUX_OPTIONS entries exist (1241)
            if len(entries) < MAX_ENTRIES:
                entries.append(LoaderEntry(label=value))
        elif entries:
            # entry keys go to the last entry, also after a dropped 11th LABEL (1249)
            field = _LOADER_FIELDS[key]
            setattr(entries[-1], field, _drop_cbootargs(value) if key == "APPEND" else value)
    return LoaderConfig(timeout, default, menu_title, entries)


def _drop_cbootargs(value: str) -> str:
    """The first ``${cbootargs}`` and the spaces (not tabs) after it go (1279-1287)."""
    at = value.find(CBOOTARGS)
    if at < 0:
        return value
    after = at + len(CBOOTARGS)
    while after < len(value) and value[after] == " ":
        after += 1
    return value[:at] + value[after:]


def loader_path(path: str) -> str:
    """A path of the file as UEFI opens it on the root partition.

    PathCleanUpDirectories: '/' and '\\' are one separator, '.' and '..' are
    resolved, doubled separators collapse; a relative path starts at the root.
    """
    parts: list[str] = []
    for part in path.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def _indent(body: str) -> str:
    return body[: len(body) - len(body.lstrip(" \t"))]


def _split_lines(text: str) -> list[_Line]:
    lines: list[_Line] = []
    pieces = text.split("\n")
    for number, piece in enumerate(pieces):
        last = number == len(pieces) - 1
        if last:
            if piece:
                lines.append(_Line(piece, ""))
        elif piece.endswith("\r"):
            lines.append(_Line(piece[:-1], "\r\n"))
        else:
            lines.append(_Line(piece, "\n"))
    return lines


@dataclass(eq=False)
class _Entry:
    label: str
    start: int  # index of the LABEL line
    end: int  # index of the entry's last key line
    keys: dict[str, int]  # key -> line index
    values: dict[str, str]


# --- kernel command line ----------------------------------------------------


@dataclass(frozen=True)
class _Token:
    start: int
    end: int
    text: str
    key: str
    value: str | None


def _tokenize(args: str) -> list[_Token]:
    """Split a command line as the kernel's next_arg() does (double quotes group)."""
    tokens: list[_Token] = []
    index = 0
    length = len(args)
    while index < length:
        while index < length and args[index].isspace():
            index += 1
        if index >= length:
            break
        start = index
        in_quote = False
        while index < length and (in_quote or not args[index].isspace()):
            if args[index] == '"':
                in_quote = not in_quote
            index += 1
        text = args[start:index]
        key, sep, value = text.partition("=")
        if not sep or not key:
            tokens.append(_Token(start, index, text, text.strip('"'), None))
            continue
        if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
            value = value[1:-1]
        elif value.startswith('"'):
            value = value[1:]
        tokens.append(_Token(start, index, text, key.strip('"'), value))
    return tokens


def _norm_key(key: str) -> str:
    # The kernel's parameq(): '-' and '_' are the same in parameter names.
    return key.replace("-", "_")


def _arg_text(key: str, value: str | None) -> str:
    if value is None:
        return key
    if any(char.isspace() for char in value):
        return f'{key}="{value}"'
    return f"{key}={value}"


def _check_arg(key: str, value: str | None) -> None:
    if key == CBOOTARGS:
        raise ExtlinuxError(f"{CBOOTARGS} is not an argument that can be set or removed")
    if not _ARG_KEY.match(key):
        raise ExtlinuxError(
            f"kernel argument name {key!r} is empty or has a space, '=', '\"' or '#'"
        )
    if value is not None and ('"' in value or "#" in value or "\n" in value or "\r" in value):
        raise ExtlinuxError(
            f"value {value!r} of kernel argument {key!r} has a '\"', '#' or line break; "
            "L4TLauncher ends the line at '#', and the kernel cannot quote a quote"
        )


def parse_args(append: str) -> dict[str, Any]:
    """The kernel arguments of an APPEND value, as facts.

    ``args``: name -> value (None for a bare flag; the last one wins for a name
    given twice, e.g. ``console``); ``args_list``: every argument as written, in
    order, ``${cbootargs}`` included; ``init_args``: what follows ``--``.
    """
    tokens = _tokenize(append)
    args: dict[str, str | None] = {}
    args_list: list[str] = []
    init_args: list[str] = []
    after_dashes = False
    for token in tokens:
        if after_dashes:
            init_args.append(token.text)
            continue
        if token.text == "--":
            after_dashes = True
            continue
        args_list.append(token.text)
        args[token.key] = token.value
    return {"args": args, "args_list": args_list, "init_args": init_args}


def _checked_edits(
    set_args: Sequence[tuple[str, str | None]], remove_args: Sequence[str]
) -> list[tuple[str, str | None]]:
    """Validate the edits; return the removals as (name, value or None)."""
    for key, value in set_args:
        _check_arg(key, value)
    removals: list[tuple[str, str | None]] = []
    set_names = {_norm_key(key) for key, _value in set_args}
    if len(set_names) != len(set_args):
        raise ExtlinuxError(
            f"kernel arguments set twice: {', '.join(key for key, _value in set_args)}"
        )
    for item in remove_args:
        key, sep, value = item.partition("=")
        removal = (key, value if sep else None)
        _check_arg(*removal)
        if _norm_key(key) in set_names:
            raise ExtlinuxError(f"kernel argument {key!r} is both set and removed")
        removals.append(removal)
    return removals


def _join_pieces(pieces: Sequence[tuple[str, str | None]]) -> str:
    """Join (separator, text) pieces; a None text is dropped with its separator."""
    out: list[str] = []
    for separator, text in pieces:
        if text is None:
            continue
        out.append(text if not out else (separator or " ") + text)
    return "".join(out)


def _edit_args(
    append: str,
    set_args: Sequence[tuple[str, str | None]],
    remove_args: Sequence[str],
) -> str:
    """Set and remove kernel arguments, touching nothing else in ``append``."""
    removals = _checked_edits(set_args, remove_args)
    tokens = _tokenize(append)
    # Arguments after "--" belong to init: never edited, new ones go before it.
    boundary = next((n for n, token in enumerate(tokens) if token.text == "--"), len(tokens))
    pieces: list[tuple[str, str | None]] = []
    previous_end = 0
    for token in tokens:
        pieces.append((append[previous_end : token.start], token.text))
        previous_end = token.end
    tail = append[previous_end:]
    appended: list[tuple[str, str | None]] = []
    for key, value in set_args:
        name = _norm_key(key)
        matches = [n for n in range(boundary) if _norm_key(tokens[n].key) == name]
        new_text = _arg_text(key, value)
        if not matches:
            appended.append((" ", new_text))
            continue
        pieces[matches[0]] = (pieces[matches[0]][0], new_text)
        for n in matches[1:]:
            pieces[n] = (pieces[n][0], None)
    for key, value in removals:
        name = _norm_key(key)
        for n in range(boundary):
            token = tokens[n]
            if _norm_key(token.key) == name and (value is None or token.value == value):
                pieces[n] = (pieces[n][0], None)
    pieces[boundary:boundary] = appended
    return _join_pieces(pieces) + tail


# --- isolation ----------------------------------------------------------------


def _housekeeping(isolated: list[int], housekeeping: object, ncpus: int | None) -> list[int] | None:
    if housekeeping is None:
        return None if ncpus is None else complement(isolated, ncpus)
    house = parse_cpulist(housekeeping, ncpus)
    overlap = sorted(set(house) & set(isolated))
    if overlap:
        raise ExtlinuxError(
            f"housekeeping CPUs {format_cpulist(house)} include isolated CPUs "
            f"{format_cpulist(overlap)}; they must be disjoint"
        )
    return house


def isolation_args(
    cpus: object,
    *,
    flags: Iterable[str] = ("managed_irq", "domain"),
    housekeeping: object = None,
    ncpus: int | None = None,
    nohz_full: bool = True,
    rcu_nocbs: bool = True,
    irqaffinity: bool = True,
) -> tuple[list[tuple[str, str | None]], list[str]]:
    """Kernel arguments that isolate ``cpus``: (arguments to set, names to remove).

    ``isolcpus=<flags,>cpus``, and unless turned off ``nohz_full=cpus``,
    ``rcu_nocbs=cpus`` and ``irqaffinity=housekeeping``; housekeeping defaults
    to the CPUs below ``ncpus`` that are not isolated (without ``ncpus`` or
    ``housekeeping``, irqaffinity is left as it is). An argument that is turned
    off, or all four when ``cpus`` is empty, is removed.
    """
    flag_list = list(flags)
    for flag in flag_list:
        if flag not in ISOLCPUS_FLAGS:
            raise ExtlinuxError(f"isolcpus flag {flag!r} is not one of {', '.join(ISOLCPUS_FLAGS)}")
    try:
        isolated = parse_cpulist(cpus, ncpus)
        if not isolated:
            return [], list(_ISOLATION_KEYS)
        house = _housekeeping(isolated, housekeeping, ncpus)
    except CpuListError as exc:
        raise ExtlinuxError(str(exc)) from exc
    if house is not None and not house:
        raise ExtlinuxError(f"isolating CPUs {format_cpulist(isolated)} leaves no housekeeping CPU")
    iso_text = format_cpulist(isolated)
    wanted = {"nohz_full": nohz_full, "rcu_nocbs": rcu_nocbs, "irqaffinity": irqaffinity}
    values = {"nohz_full": iso_text, "rcu_nocbs": iso_text}
    if house is not None:
        values["irqaffinity"] = format_cpulist(house)
    to_set: list[tuple[str, str | None]] = [("isolcpus", ",".join([*flag_list, iso_text]))]
    to_set += [(name, values[name]) for name in values if wanted[name]]
    to_remove = [name for name, on in wanted.items() if not on]
    return to_set, to_remove


def _isolation_facts(args: Mapping[str, str | None]) -> dict[str, Any]:
    facts: dict[str, Any] = {"isolcpus_flags": []}
    for name in _ISOLATION_KEYS:
        value = args.get(name)
        if value is None:
            facts[name] = None
            continue
        if name == "isolcpus":
            parts = value.split(",")
            flag_list: list[str] = []
            while parts and parts[0] and (parts[0][0].isalpha()):
                flag_list.append(parts.pop(0))
            facts["isolcpus_flags"] = flag_list
            value = ",".join(parts)
        try:
            facts[name] = parse_cpulist(value)
        except CpuListError:
            facts[name] = None
    return facts


# --- the file -----------------------------------------------------------------

# What an APPEND needs to find its root file system; derived_append() copies them.
_ROOT_KEYS = ("root", "rootfstype", "rw", "ro", "rootwait")


def _require_root(label: str, append: str | None, where: str = "") -> None:
    """L4TLauncher adds no root= of its own (it appends only the platform's arguments,
    L4TLauncher.c 1459-1468): an APPEND without root= leaves the kernel no root device."""
    args = parse_args(append or "")["args"]
    if not args.get("root"):
        context = f" ({where})" if where else ""
        raise ExtlinuxError(
            f"APPEND for {label!r}{context} has no root=: L4TLauncher appends only the "
            "platform's own arguments, so the kernel would have no root device; "
            "copy root= from the entry it derives from"
        )


def _check_value(key: str, value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ExtlinuxError(f"{key} value {value!r} has a line break")
    if "#" in value:
        raise ExtlinuxError(
            f"{key} value {value!r} has a '#'; L4TLauncher reads the rest of the line as a comment"
        )
    value = value.strip(" \t")
    if key in ("LABEL", "LINUX", "DEFAULT") and not value:
        raise ExtlinuxError(f"{key} needs a value")
    return value


class ExtlinuxConf:
    """An extlinux.conf held as its lines, edited in place."""

    def __init__(self, text: str = "") -> None:
        self._lines = _split_lines(text)
        self._index()

    @classmethod
    def from_bytes(cls, data: bytes) -> ExtlinuxConf:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise ExtlinuxError("the file is UTF-16; only ASCII/UTF-8 files are supported")
        # latin-1 maps every byte to one character and back, so odd bytes survive.
        return cls(data.decode("latin-1"))

    def render(self) -> str:
        return "".join(line.body + line.eol for line in self._lines)

    def to_bytes(self) -> bytes:
        return self.render().encode("latin-1")

    # -- reading --

    def _index(self) -> None:
        self._entries: list[_Entry] = []
        self._globals_at: dict[str, int] = {}
        self._global_values: dict[str, str] = {}
        self._unknown: list[tuple[int, str]] = []
        for number, line in enumerate(self._lines):
            clean = line.clean()
            key, value = _classify(clean)
            if key is None:
                continue
            if key == "":
                self._unknown.append((number + 1, clean))
                continue
            rest = clean[len(key) :]
            if rest and rest[0] not in " \t":
                raise ExtlinuxError(
                    f"{clean!r} starts with {key}: L4TLauncher reads it as {key} {value!r}; "
                    f"put a space after {key}, or comment the line out",
                    number + 1,
                )
            if key in _GLOBAL_KEYS:
                self._index_global(number, key, value)
            elif key == "LABEL":
                self._index_label(number, value)
            else:
                self._index_entry_key(number, key, value)
        for entry in self._entries:
            if "LINUX" not in entry.keys:
                raise ExtlinuxError(f"LABEL {entry.label!r} has no LINUX line", entry.start + 1)

    def _index_global(self, number: int, key: str, value: str) -> None:
        if key in self._globals_at:
            raise ExtlinuxError(
                f"second {key} (first on line {self._globals_at[key] + 1}); "
                "L4TLauncher silently uses the last one",
                number + 1,
            )
        self._globals_at[key] = number
        self._global_values[key] = value

    def _index_label(self, number: int, label: str) -> None:
        if not label:
            raise ExtlinuxError("LABEL without a name", number + 1)
        for entry in self._entries:
            if entry.label == label:
                raise ExtlinuxError(
                    f"duplicate LABEL {label!r} (first on line {entry.start + 1})", number + 1
                )
        if len(self._entries) >= MAX_ENTRIES:
            raise ExtlinuxError(
                f"LABEL {label!r} is entry {len(self._entries) + 1}; L4TLauncher reads at most "
                f"{MAX_ENTRIES} entries",
                number + 1,
            )
        self._entries.append(_Entry(label, number, number, {}, {}))

    def _index_entry_key(self, number: int, key: str, value: str) -> None:
        if not self._entries:
            raise ExtlinuxError(f"{key} before any LABEL; L4TLauncher ignores it", number + 1)
        entry = self._entries[-1]
        if key in entry.keys:
            raise ExtlinuxError(
                f"second {key} in entry {entry.label!r} (first on line "
                f"{entry.keys[key] + 1}); L4TLauncher silently uses the last one",
                number + 1,
            )
        if key in _PATH_KEYS and not value:
            raise ExtlinuxError(
                f"{key} without a path in entry {entry.label!r}; L4TLauncher fails to "
                "load the entry",
                number + 1,
            )
        entry.keys[key] = number
        entry.values[key] = value
        entry.end = number

    @property
    def labels(self) -> list[str]:
        return [entry.label for entry in self._entries]

    @property
    def default(self) -> str | None:
        return self._global_values.get("DEFAULT")

    def boot_index(self) -> int | None:
        """The entry L4TLauncher boots without a key press (DEFAULT, else entry 0)."""
        if not self._entries:
            return None
        default = self.default
        for number, entry in enumerate(self._entries):
            if entry.label == default:
                return number
        return 0

    def entry(self, label: str) -> dict[str, Any] | None:
        for number, entry in enumerate(self._entries):
            if entry.label == label:
                return self._entry_facts(number, entry)
        return None

    def _entry_facts(self, number: int, entry: _Entry) -> dict[str, Any]:
        append = entry.values.get("APPEND")
        parsed = parse_args(append or "")
        return {
            "index": number,
            "label": entry.label,
            "line": entry.start + 1,
            "menu_label": entry.values.get("MENU LABEL"),
            "linux": entry.values.get("LINUX"),
            "initrd": entry.values.get("INITRD"),
            "fdt": entry.values.get("FDT"),
            "overlays": entry.values.get("OVERLAYS"),
            "append": append,
            "args": parsed["args"],
            "args_list": parsed["args_list"],
            "init_args": parsed["init_args"],
            "isolation": _isolation_facts(parsed["args"]),
        }

    def _line_ending(self) -> str:
        endings = {line.eol for line in self._lines if line.eol}
        if not endings:
            return "none"
        if len(endings) > 1:
            return "mixed"
        return "CRLF" if endings == {"\r\n"} else "LF"

    def facts(self) -> dict[str, Any]:
        boot = self.boot_index()
        timeout_text = self._global_values.get("TIMEOUT")
        timeout = None
        if timeout_text is not None:
            # StrDecimalToUintn(): leading decimal digits, 0 when there are none
            digits = re.match(r"[0-9]*", timeout_text)
            timeout = int(digits.group(0)) if digits and digits.group(0) else 0
        return {
            "timeout": timeout,
            "default": self.default,
            "default_found": self.default is not None and self.default in self.labels,
            "menu_title": self._global_values.get("MENU TITLE"),
            "boot_index": boot,
            "boot_label": None if boot is None else self._entries[boot].label,
            "labels": self.labels,
            "entries": [self._entry_facts(n, e) for n, e in enumerate(self._entries)],
            "line_ending": self._line_ending(),
            "ignored_lines": [{"line": n, "text": t} for n, t in self._unknown],
        }

    def boot_entry_signature(self) -> tuple[str | None, ...] | None:
        """What changes the next default boot: the booted entry's label and values."""
        boot = self.boot_index()
        if boot is None:
            return None
        entry = self._entries[boot]
        return (entry.label, *(entry.values.get(key) for key in ENTRY_KEYS if key != "MENU LABEL"))

    # -- editing helpers --

    def _eol(self) -> str:
        crlf = sum(1 for line in self._lines if line.eol == "\r\n")
        lf = sum(1 for line in self._lines if line.eol == "\n")
        return "\r\n" if crlf > lf else "\n"

    def _find(self, label: str) -> _Entry:
        for entry in self._entries:
            if entry.label == label:
                return entry
        raise ExtlinuxError(
            f"no entry LABEL {label!r} (entries: {', '.join(self.labels) or 'none'})"
        )

    def _key_indent(self, entry: _Entry | None) -> str:
        candidates = [entry] if entry is not None else []
        candidates += self._entries
        for candidate in candidates:
            for number in sorted(candidate.keys.values()):
                return _indent(self._lines[number].body)
        return _DEFAULT_INDENT

    def _set_line_value(self, number: int, key: str, value: str) -> None:
        """Replace a key's value, keeping indentation, spacing and a trailing comment."""
        line = self._lines[number]
        indent = _indent(line.body)
        rest = line.body[len(indent) :]
        if not rest.startswith(key):  # a stray CR inside the key: write the line plainly
            line.body = f"{indent}{key} {value}"
            return
        after = rest[len(key) :]
        hash_at = after.find("#")
        main, comment = (after, "") if hash_at < 0 else (after[:hash_at], after[hash_at:])
        if main.strip(" \t"):
            separator = main[: len(main) - len(main.lstrip(" \t"))]
            trailing = main[len(main.rstrip(" \t")) :]
        else:
            separator, trailing = main, ""
        line.body = f"{indent}{key}{separator or ' '}{value}{trailing}{comment}"

    def _append_block(self, bodies: Sequence[str]) -> None:
        eol = self._eol()
        if self._lines:
            last = self._lines[-1]
            if not last.eol:
                last.eol = eol
            if last.clean() or "#" in last.body:
                self._lines.append(_Line("", eol))
        self._lines.extend(_Line(body, eol) for body in bodies)

    # -- edits --

    def set_value(self, label: str, key: str, value: str | None) -> None:
        """Set an entry's MENU LABEL, LINUX, INITRD, FDT, OVERLAYS or APPEND.

        None or "" removes the line (not for LINUX).
        """
        if key not in ENTRY_KEYS:
            raise ExtlinuxError(f"{key} is not an entry key ({', '.join(ENTRY_KEYS)})")
        entry = self._find(label)
        if value is None or value.strip(" \t") == "":
            if key == "LINUX":
                raise ExtlinuxError(f"LINUX of {label!r} cannot be removed")
            if key in entry.keys:
                del self._lines[entry.keys[key]]
                self._index()
            return
        value = _check_value(key, value)
        if key == "APPEND":
            if CBOOTARGS not in value:
                raise ExtlinuxError(
                    f"APPEND for {label!r} drops {CBOOTARGS}: keep it, as NVIDIA's entries do "
                    "(L4TLauncher deletes it and appends the platform's arguments)"
                )
            _require_root(label, value)
        if key in entry.keys:
            if entry.values[key] != value:
                self._set_line_value(entry.keys[key], key, value)
        else:
            position = entry.start + 1
            for earlier in ENTRY_KEYS[: ENTRY_KEYS.index(key)]:
                if earlier in entry.keys:
                    position = max(position, entry.keys[earlier] + 1)
            indent = self._key_indent(entry)
            self._lines.insert(position, _Line(f"{indent}{key} {value}", self._eol()))
        self._index()

    def edit_args(
        self,
        label: str,
        set_args: Sequence[tuple[str, str | None]] = (),
        remove_args: Sequence[str] = (),
    ) -> None:
        """Set (replace in place, never duplicate) and remove kernel arguments of an entry.

        An argument that is set takes the place of its first occurrence, later
        occurrences are dropped, and a new one goes at the end (before ``--``).
        ``remove_args`` items are names (every occurrence goes) or ``name=value``
        (only that one). Names match as the kernel matches them ('-' == '_').
        """
        entry = self._find(label)
        current = entry.values.get("APPEND")
        base = current if current is not None else self.derived_append(label)
        new = _edit_args(base, set_args, remove_args)
        if current is None or new != current:
            self.set_value(label, "APPEND", new)

    def add_entry(
        self,
        label: str,
        linux: str,
        *,
        menu_label: str | None = None,
        initrd: str | None = None,
        fdt: str | None = None,
        overlays: str | None = None,
        append: str | None = None,
    ) -> None:
        """Append a new entry at the end of the file (existing entries keep their numbers).

        Without ``append`` the entry gets ``${cbootargs}`` and the root arguments of
        the entry L4TLauncher boots now (:meth:`derived_append`).
        """
        label = _check_value("LABEL", label)
        if label in self.labels:
            raise ExtlinuxError(f"LABEL {label!r} already exists")
        self._check_room()
        if append is None:
            append = self.derived_append(label)
        values = {
            "MENU LABEL": menu_label,
            "LINUX": linux,
            "FDT": fdt,
            "INITRD": initrd,
            "APPEND": append,
            "OVERLAYS": overlays,
        }
        if CBOOTARGS not in append:
            raise ExtlinuxError(f"APPEND for {label!r} must keep {CBOOTARGS}")
        _require_root(label, append)
        label_indent = ""
        if self._entries:
            label_indent = _indent(self._lines[self._entries[0].start].body)
        indent = self._key_indent(None)
        bodies = [f"{label_indent}LABEL {label}"]
        for key in ENTRY_KEYS:
            value = values[key]
            if value is not None and value.strip(" \t"):
                bodies.append(f"{indent}{key} {_check_value(key, value)}")
        self._append_block(bodies)
        self._index()

    def copy_entry(self, source: str, label: str) -> None:
        """Append a copy of entry ``source`` (its lines as written) under a new LABEL."""
        label = _check_value("LABEL", label)
        entry = self._find(source)
        if label in self.labels:
            raise ExtlinuxError(f"LABEL {label!r} already exists")
        self._check_room()
        _require_root(label, entry.values.get("APPEND"), f"copied from {source!r}")
        bodies = [line.body for line in self._lines[entry.start : entry.end + 1]]
        bodies[0] = f"{_indent(bodies[0])}LABEL {label}"
        self._append_block(bodies)
        self._index()

    def derived_append(self, label: str) -> str:
        """``${cbootargs}`` and the root arguments (root=, rootfstype=, rw/ro, rootwait)
        of the entry L4TLauncher boots now: the APPEND of an entry that has none."""
        boot = self.boot_index()
        append = None if boot is None else self._entries[boot].values.get("APPEND")
        kept = [
            token.text
            for token in _tokenize(append or "")
            if token.key in _ROOT_KEYS and (token.key != "root" or token.value)
        ]
        if not any(text.startswith("root=") for text in kept):
            source = "no entry" if boot is None else f"entry {self._entries[boot].label!r}"
            raise ExtlinuxError(
                f"APPEND for {label!r} would have no root=, and {source} has one to copy; "
                "give append with root="
            )
        return " ".join([CBOOTARGS, *kept])

    def remove_entry(self, label: str) -> None:
        entry = self._find(label)
        if len(self._entries) == 1:
            raise ExtlinuxError(f"LABEL {label!r} is the only entry; it cannot be removed")
        if self.default == label:
            raise ExtlinuxError(
                f"LABEL {label!r} is the DEFAULT; make another entry the DEFAULT first"
            )
        start, end = entry.start, entry.end
        before_blank = start > 0 and not self._lines[start - 1].body.strip(" \t\r")
        after = end + 1
        after_blank = after >= len(self._lines) or not self._lines[after].body.strip(" \t\r")
        if before_blank and after_blank:
            start -= 1
        del self._lines[start : end + 1]
        self._index()

    def set_default(self, label: str) -> None:
        label = _check_value("DEFAULT", label)
        if label not in self.labels:
            raise ExtlinuxError(
                f"DEFAULT {label!r} names no LABEL (entries: {', '.join(self.labels)}); "
                "L4TLauncher would boot entry 0"
            )
        if self.default == label:
            return
        self._set_global("DEFAULT", label)

    def set_timeout(self, timeout: int) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
            raise ExtlinuxError(f"TIMEOUT {timeout!r} is not a number of tenths of a second")
        if self._global_values.get("TIMEOUT") == str(timeout):
            return
        self._set_global("TIMEOUT", str(timeout))

    def _set_global(self, key: str, value: str) -> None:
        if key in self._globals_at:
            self._set_line_value(self._globals_at[key], key, value)
        else:
            position = 0
            if key != "TIMEOUT" and "TIMEOUT" in self._globals_at:
                position = self._globals_at["TIMEOUT"] + 1
            self._lines.insert(position, _Line(f"{key} {value}", self._eol()))
        self._index()

    def _check_room(self) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            raise ExtlinuxError(
                f"the file already has {MAX_ENTRIES} entries, the most L4TLauncher reads"
            )
