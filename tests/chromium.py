"""Headless Chromium (Debian's ``chromium``) for the report's rendering tests.

Screenshots are kept where a CI run can collect them: ``$JETSON_RT_SCREENSHOTS``, by
default ``artifacts/screenshots/`` in the repository (git-ignored).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshots_dir() -> Path:
    directory = Path(os.environ.get("JETSON_RT_SCREENSHOTS") or REPO / "artifacts/screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def run_chromium(binary: str, profile: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *arguments,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def screenshot_page(
    binary: str, page: Path, name: str, scratch: Path, size: tuple[int, int] = (1280, 2000)
) -> Path:
    """A PNG of ``page`` rendered offline, saved as ``name`` in :func:`screenshots_dir`."""
    screenshot = screenshots_dir() / name
    screenshot.unlink(missing_ok=True)
    shot = run_chromium(
        binary,
        scratch / f"profile-{name}",
        f"--screenshot={screenshot}",
        f"--window-size={size[0]},{size[1]}",
        "--hide-scrollbars",
        page.resolve().as_uri(),
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.is_file(), shot.stderr[-2000:]
    return screenshot


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    return width, height
