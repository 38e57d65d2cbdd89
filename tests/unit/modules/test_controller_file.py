"""jetson_rt.fleet.controller_file: module_utils.controller_file, and the action run by
ansible-playbook on the controller (check mode, diff, idempotence, refusals)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.jetson_rt.fleet.plugins.module_utils.controller_file import (
    ControllerFileError,
    ensure,
    parse_mode,
)

REPO = Path(__file__).resolve().parents[3]


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_file_written_once_then_unchanged(tmp_path: Path) -> None:
    target = tmp_path / "host.json"
    first = ensure(str(target), content='{"a": 1}\n', mode="0644")
    assert first["changed"] is True
    assert target.read_text() == '{"a": 1}\n'
    assert mode_of(target) == 0o644
    again = ensure(str(target), content='{"a": 1}\n', mode="0644")
    assert again["changed"] is False
    # no temporary file left beside it
    assert [p.name for p in tmp_path.iterdir()] == ["host.json"]


def test_new_content_replaces_the_file_atomically(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    target.write_text("old\n")
    inode = target.stat().st_ino
    result = ensure(str(target), content="new\n", mode="0640", diff=True)
    assert result["changed"] is True
    assert result["diff"]["before"] == "old\n"
    assert result["diff"]["after"] == "new\n"
    assert target.read_text() == "new\n"
    assert mode_of(target) == 0o640
    assert target.stat().st_ino != inode  # a new file renamed over the old one


def test_mode_only_change(tmp_path: Path) -> None:
    target = tmp_path / "audit.json"
    target.write_text("x")
    target.chmod(0o600)
    result = ensure(str(target), content="x", mode="0644", diff=True)
    assert result["changed"] is True
    assert "diff" not in result  # the text did not change
    assert mode_of(target) == 0o644


def test_check_mode_changes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "hosts" / "h1"
    result = ensure(str(target), state="directory", check_mode=True)
    assert result["changed"] is True
    assert not target.exists()
    (tmp_path / "f").write_text("a")
    result = ensure(str(tmp_path / "f"), content="b", check_mode=True, diff=True)
    assert result["changed"] is True
    assert result["diff"]["after"] == "b"
    assert (tmp_path / "f").read_text() == "a"


def test_directory_with_parents_then_unchanged(tmp_path: Path) -> None:
    target = tmp_path / "run" / "hosts" / "orin-nano-01"
    assert ensure(str(target), state="directory", mode="0755")["changed"] is True
    assert target.is_dir() and mode_of(target) == 0o755
    assert ensure(str(target), state="directory", mode="0755")["changed"] is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": "relative/host.json", "content": "x"}, "absolute path"),
        ({"path": "/nonexistent-folder-jrt/host.json", "content": "x"}, "does not exist"),
        ({"path": "/tmp/x", "state": "link"}, "file or directory"),
        ({"path": "/tmp/x"}, "needs content"),
        ({"path": "/tmp/x", "content": "x", "mode": "rw-r--r--"}, "octal permission"),
        ({"path": "/tmp/x", "content": "x", "mode": "17777"}, "outside 0000-7777"),
    ],
)
def test_refusals_name_the_value(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ControllerFileError, match=message):
        ensure(**kwargs)


def test_a_file_where_a_folder_is_asked_is_refused(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text("")
    with pytest.raises(ControllerFileError, match="not a folder"):
        ensure(str(tmp_path / "hosts"), state="directory")
    with pytest.raises(ControllerFileError, match="is a folder"):
        ensure(str(tmp_path), content="x")


def test_parse_mode() -> None:
    assert parse_mode("0644", 0) == 0o644
    assert parse_mode("755", 0) == 0o755
    assert parse_mode(None, 0o600) == 0o600
    assert parse_mode(0o640, 0) == 0o640


PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: folder
      jetson_rt.fleet.controller_file:
        path: "{dir}/hosts/h1"
        state: directory
      register: folder
    - name: file
      jetson_rt.fleet.controller_file:
        path: "{dir}/hosts/h1/host.json"
        content: "{{{{ {{'host': 'h1'}} | to_nice_json }}}}\\n"
        mode: "0640"
      register: file
    - name: results
      ansible.builtin.debug:
        msg: "RESULT {{{{ {{'folder': folder.changed, 'file': file.changed}} | to_json }}}}"
"""


def run_play(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    play = tmp_path / "play.yml"
    play.write_text(PLAY.format(dir=tmp_path / "run"))
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path / "facts"),
    }
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            "localhost,",
            str(play),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def changed(output: str) -> dict[str, bool]:
    line = next(line for line in output.splitlines() if "RESULT {" in line)
    parsed: dict[str, bool] = json.loads(line.split("RESULT ", 1)[1].rstrip("'"))
    return parsed


def test_action_through_ansible_playbook(tmp_path: Path) -> None:
    """Check mode first (nothing written, a diff shown), then a real run, then a second
    run that changes nothing."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    check = run_play(tmp_path, "--check", "--diff")
    assert check.returncode == 0, check.stdout + check.stderr
    assert changed(check.stdout) == {"folder": True, "file": True}
    assert '"host": "h1"' in check.stdout  # the diff shows the new file's text
    assert not (run_dir / "hosts").exists()
    first = run_play(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert changed(first.stdout) == {"folder": True, "file": True}
    host_json = run_dir / "hosts" / "h1" / "host.json"
    assert json.loads(host_json.read_text()) == {"host": "h1"}
    assert mode_of(host_json) == 0o640
    second = run_play(tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert changed(second.stdout) == {"folder": False, "file": False}
