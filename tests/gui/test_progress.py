"""Issue 11: defaults that don't waste work, and progress with a time left for every run."""

from __future__ import annotations

import numpy as np
import pytest

from mdn_gui import jobs
from mdn_gui.controllers.progress import RunClock, RunStatus, duration_text
from mdn_gui.controllers.session import SessionController
from mdn_gui.state import MASKED, ModelSettings, RunRecord
from mdn_gui.views import run_progress
from mdn_gui.views.main_window import MainWindow

TIMEOUT = 20_000


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_run_clock_estimates_the_time_left_and_counts_it_down() -> None:
    clock = FakeClock()
    runs = RunClock(clock)
    assert runs.status() is None and not runs.running
    runs.update(("run:masked", 1), 0.0, "loading")
    assert runs.status() == RunStatus(0.0, 0.0, None, "loading")  # nothing done: no estimate yet
    clock.now += 2.0
    runs.update(("run:masked", 1), 0.25, "pass 1/1, preview")
    assert runs.status().remaining == pytest.approx(6.0)  # 2 s for a quarter: 6 s for the rest
    clock.now += 4.0  # a long tile, no news: the estimate counts down
    status = runs.status()
    assert status.remaining == pytest.approx(2.0) and status.elapsed == pytest.approx(6.0)
    assert "25%" in status.text() and "about 2 s left" in status.text()
    clock.now += 10.0
    assert runs.status().remaining == 0.0  # late, not negative
    runs.update(("run:masked", 2), 0.5, "pass 1/1, tile 1/2")  # another run starts over
    assert runs.status().elapsed == 0.0 and runs.status().remaining == 0.0
    runs.stop()
    assert runs.status() is None


def test_durations_read_as_people_say_them() -> None:
    assert [duration_text(s) for s in (0.4, 7, 125, 3725)] == ["0 s", "7 s", "2 min 05 s", "1 h 02 min"]


def test_the_app_defaults_to_auto_tiles_and_says_what_a_run_used() -> None:
    assert ModelSettings().tile == 0
    assert RunRecord().tiling_text() == ""  # a classical method has no tiles
    assert RunRecord(tile_shape=(512, 640), tile_count=1).tiling_text() == "whole image (640 x 512)"
    assert RunRecord(tile_shape=(1024, 696), tile_count=18).tiling_text() == "18 tiles of 696 x 1024"


def test_a_default_run_is_one_tile_and_its_record_says_so(qtbot, session: SessionController) -> None:
    settings = session.run_settings()
    assert settings.tile == 0 and settings.preview == jobs.FIRST_CPU_PREVIEW  # nothing measured yet
    with qtbot.waitSignal(session.run_finished, timeout=TIMEOUT):
        session.run_now()
    record = session.doc.records[MASKED]
    assert (record.tile_shape, record.tile_count) == ((64, 64), 1)


def test_the_preview_is_painted_first_near_the_view_centre(
    qtbot, session: SessionController, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "PREVIEW_SIDE", 16)  # a sixteenth of the 64x64 chart
    session.focus_provider = lambda: (50, 12)
    painted: list[tuple[int, int, int, int]] = []
    session.doc.layer_updated.connect(lambda key, box: painted.append(box))
    with qtbot.waitSignal(session.run_finished, timeout=TIMEOUT):
        session.run_now()
    (y0, x0, y1, x1), whole = painted
    assert (y1 - y0, x1 - x0) == (16, 16) and y0 <= 50 < y1 and x0 <= 12 < x1
    assert whole == (0, 0, 64, 64)  # then the image, in one tile, paints over it
    final = session.doc.layers[MASKED].image
    session.focus_provider = lambda: None
    monkeypatch.setattr(jobs, "PREVIEW_SIDE", 0)
    with qtbot.waitSignal(session.run_finished, timeout=TIMEOUT):
        session.run_now()
    np.testing.assert_array_equal(session.doc.layers[MASKED].image, final)  # display only


def test_the_status_bar_shows_progress_and_time_left_of_a_long_run(
    qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_progress, "SHOW_AFTER_SECONDS", 0.0)  # the tiny model is quick
    shown = window.run_progress
    assert not shown.isVisible()
    assert window.model_panel.tile.text() == "auto"
    window.session.set_model(tile=16, passes=32)
    window.session.run_now()
    # past the model's loading (its label also says "estimating time left"), into the passes
    qtbot.waitUntil(lambda: shown.isVisible() and "pass" in shown.label.text()
                    and "left" in shown.label.text(), timeout=TIMEOUT)
    assert 0 < shown.bar.value() < run_progress.STEPS
    window.cancel()
    assert not shown.isVisible()
    window.session.set_model(tile=0, passes=1)
    with qtbot.waitSignal(window.session.run_finished, timeout=TIMEOUT):
        window.session.run_now()
    assert window.model_panel.tiling.text() == "last run: whole image (64 x 64)"
    assert "whole image (64 x 64)" in window.time_label.text()


def test_the_preview_fits_the_speed_the_last_run_measured() -> None:
    assert jobs.preview_side(None, "cpu") == jobs.FIRST_CPU_PREVIEW
    assert jobs.preview_side(None, "cuda") == jobs.PREVIEW_SIDE
    assert jobs.preview_side(4096 / jobs.PREVIEW_SECONDS, "cpu") == 64  # 64 x 64 in the time allowed
    assert jobs.preview_side(1e9, "cuda") == jobs.PREVIEW_SIDE  # never more than the cap
    assert jobs.preview_side(10.0, "cpu") == jobs.MIN_PREVIEW  # nor less than the floor


def test_a_run_measures_its_speed_and_the_next_preview_uses_it(qtbot, session: SessionController) -> None:
    with qtbot.waitSignal(session.run_finished, timeout=TIMEOUT):
        session.run_now()
    rate = session.doc.records[MASKED].pixels_per_second
    assert rate > 0
    assert session.run_settings().preview == jobs.preview_side(rate, "cpu")
