"""Property tests of the extlinux reader and editor: whatever the file holds, the module
either reads it or refuses it with its own error (ExtlinuxError), quickly, and never
loses a byte it did not mean to change."""

from __future__ import annotations

import time

from ansible_collections.jetson_rt.fleet.plugins.module_utils.extlinux import (
    ExtlinuxConf,
    ExtlinuxError,
    isolation_args,
    loader_read,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Lines built from the pieces L4TLauncher reacts to, so that generated files reach deep
# into the parser (keys, glued keys, comments, CRs, tabs, ${cbootargs}, quotes) rather
# than being ignored as unknown lines.
KEYS = st.sampled_from(
    [
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
        "default",
        "LABEL",
        "LINUX",
        "",
    ]
)
WORDS = st.sampled_from(
    [
        "primary",
        "real-time",
        "/boot/Image",
        "boot/../Image",
        "${cbootargs}",
        "root=/dev/mmcblk0p1",
        "isolcpus=managed_irq,domain,4-5",
        'dyndbg="file x.c +p"',
        '"',
        "--",
        "#",
        "# comment",
        "\r",
        "\t",
        " ",
        "30",
        "=",
        "a,b",
        "\x00",
        "é",
    ]
)
LINE = st.builds(
    lambda indent, key, glue, words: indent + key + glue + " ".join(words),
    st.sampled_from(["", " ", "      ", "\t"]),
    KEYS,
    st.sampled_from([" ", "\t", ""]),
    st.lists(WORDS, max_size=5),
)
FILES = st.builds(
    lambda lines, eol: eol.join(lines),
    st.lists(LINE | st.text(max_size=40), max_size=40),
    st.sampled_from(["\n", "\r\n"]),
)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _quick(started: float) -> None:
    # no hang and no pathological slowness on files of at most a few KB
    assert time.monotonic() - started < 2.0


@FAST
@given(FILES)
def test_the_loader_reading_never_fails(text: str) -> None:
    started = time.monotonic()
    config = loader_read(text)
    assert len(config.entries) <= 10
    index = config.boot_index
    assert index is None or 0 <= index < len(config.entries)
    for entry in config.entries:
        assert entry.append is None or "\n" not in entry.append
    _quick(started)


@FAST
@given(FILES)
def test_the_module_reads_or_refuses_with_its_own_error_and_keeps_every_byte(text: str) -> None:
    started = time.monotonic()
    data = text.encode("utf-8", "surrogatepass")
    try:
        conf = ExtlinuxConf.from_bytes(data)
    except ExtlinuxError:
        _quick(started)
        return
    assert conf.to_bytes() == data
    facts = conf.facts()
    # what the module accepts, L4TLauncher boots the same entry of
    assert facts["boot_index"] == loader_read(data.decode("latin-1")).boot_index
    _quick(started)


EDITS = st.sampled_from(
    [
        lambda c, label: c.set_value(label, "APPEND", "${cbootargs} root=/dev/sda1 quiet"),
        lambda c, label: c.set_value(label, "APPEND", "${cbootargs} quiet"),
        lambda c, label: c.set_value(label, "INITRD", "/boot/initrd"),
        lambda c, label: c.set_value(label, "MENU LABEL", ""),
        lambda c, label: c.edit_args(label, [("nosoftlockup", None)], ["quiet"]),
        lambda c, label: c.edit_args(label, *isolation_args("4-5", ncpus=6)),
        lambda c, label: c.edit_args(label, remove_args=["root"]),
        lambda c, label: c.copy_entry(label, "copy"),
        lambda c, label: c.add_entry("new", "/boot/Image.new"),
        lambda c, label: c.set_default(label),
        lambda c, label: c.remove_entry(label),
        lambda c, label: c.set_timeout(0),
    ]
)


@FAST
@given(FILES, st.lists(EDITS, min_size=1, max_size=4))
def test_edits_succeed_or_raise_extlinux_error_and_leave_a_readable_file(
    text: str, edits: list[object]
) -> None:
    started = time.monotonic()
    try:
        conf = ExtlinuxConf(text)
    except ExtlinuxError:
        return
    for edit in edits:
        label = conf.labels[0] if conf.labels else "primary"
        before = conf.render()
        try:
            edit(conf, label)  # type: ignore[operator]
        except ExtlinuxError:
            assert conf.render() == before  # a refused edit changes nothing
            continue
        # an accepted edit leaves a file the module reads again, with every APPEND it
        # wrote carrying root= (L4TLauncher appends only the platform's arguments)
        again = ExtlinuxConf(conf.render())
        assert again.labels == conf.labels
    _quick(started)
