"""The app under a real X server (Xvfb), as on a bare server with a display: the xcb platform
plugin needs system libraries that offscreen runs never load (README, .ci/run)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from model_core.imageio import read_image

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed")


def x11_env(tmp_path: Path) -> dict[str, str]:
    unset = ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(QT_QPA_PLATFORM="xcb", MDN_GUI_SETTINGS=str(tmp_path / "s.ini"), PYTHONPATH=str(REPO))
    return env


def test_the_app_runs_and_screenshots_under_a_real_x_server(
    tmp_path: Path, tiny_weights: dict[str, Path]
) -> None:
    shot = tmp_path / "x11.png"
    command = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable, "-m", "mdn_gui.app"]
    command += ["--sample", "chart", "--weights", str(tiny_weights["masked"]), "--run", "--quit"]
    command += ["--size", "1200x800", "--screenshot", str(shot)]
    env = x11_env(tmp_path)
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "could not load the Qt platform plugin" not in result.stderr
    image = read_image(shot).rgb
    assert image.shape[:2] == (800, 1200) and float(image.std()) > 0.05  # a window, not a blank


def test_qt_picks_the_xcb_platform_there(tmp_path: Path) -> None:
    probe = "from PySide6.QtWidgets import QApplication; print(QApplication([]).platformName())"
    command = ["xvfb-run", "-a", sys.executable, "-c", probe]
    result = subprocess.run(command, env=x11_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "xcb"
