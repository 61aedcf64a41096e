"""A newcomer session's findings, round 3 (issue 22): words that stay true as the user moves on."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from dataclasses import replace as dataclasses_replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from mdn_gui.lesson_export import measured_rows, write_text
from mdn_gui.lessons import LESSONS, Measurement, live_sentence
from mdn_gui.views.main_window import MainWindow
from mdn_gui.views.tour import WELCOME, welcome_text

TIMEOUT = 60_000


def test_the_welcome_counts_the_lessons_it_ships() -> None:
    assert WELCOME == welcome_text(len(LESSONS)) and f" {len(LESSONS)}-step tour" in WELCOME
    assert "lesson 1 of a 9-step tour" in welcome_text(9) and "six" not in WELCOME
    assert "lesson 1 of an 8-step tour" in welcome_text(8) and "of an 11-step" in welcome_text(11)


def test_the_welcome_goes_once_the_user_leaves_lesson_1(
    qtbot, small_lessons: tuple, make_window: Callable[..., MainWindow]
) -> None:
    window = make_window()
    with qtbot.waitSignal(window.tour.lessons.measured, timeout=TIMEOUT):
        window.tour.welcome()
    assert window.banner.isVisible() and window.banner.label.text() == WELCOME
    with qtbot.waitSignal(window.tour.lessons.measured, timeout=TIMEOUT):
        window.tour.lessons.next()
    assert window.tour.lessons.index == 1 and not window.banner.isVisible()


def test_another_message_is_not_taken_for_the_welcome(
    qtbot, small_lessons: tuple, make_window: Callable[..., MainWindow]
) -> None:
    window = make_window()
    with qtbot.waitSignal(window.tour.lessons.measured, timeout=TIMEOUT):
        window.tour.welcome()
    window.banner.show_message("Opened photo.png as 8-bit (it was 16-bit)", error=False)
    with qtbot.waitSignal(window.tour.lessons.measured, timeout=TIMEOUT):
        window.tour.lessons.next()
    assert window.banner.isVisible() and "photo.png" in window.banner.label.text()


def test_the_handout_gets_the_umask_permissions_and_is_never_overwritten_unasked(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = tmp_path / "lessons.html"
        write_text(path, "<html>one</html>", overwrite=False)
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        with pytest.raises(FileExistsError):
            write_text(path, "<html>two</html>", overwrite=False)
        assert path.read_text() == "<html>one</html>"
        write_text(path, "<html>two</html>", overwrite=True)
        assert path.read_text() == "<html>two</html>"
        assert [p.name for p in tmp_path.iterdir()] == ["lessons.html"]  # no temporary left behind
    finally:
        os.umask(old)


def test_a_gap_in_the_text_is_the_difference_of_the_figures_shown() -> None:
    """28.094 and 26.786 show as 28.09 and 26.79: the text must say 1.30, not the raw 1.31."""
    compare = next(lesson for lesson in LESSONS if lesson.live == "compare")
    m = Measurement(noise="poisson:2.5", psnr={"noisy": 19.614, "masked": 28.094, "baseline": 26.786})
    text = live_sentence(compare, m)
    assert "masked 28.09 dB, baseline 26.79 dB" in text
    assert "by 1.30 dB" in text and "1.31" not in text
    below = Measurement(noise="poisson:2.5", psnr={"noisy": 20.006, "masked": 19.996, "baseline": 26.0})
    assert "0.01 dB below its own noisy input" in live_sentence(compare, below)


def test_weights_that_failed_to_load_leave_open_recent(
    qtbot, make_window: Callable[..., MainWindow], tmp_path: Path
) -> None:
    window = make_window()
    photo = tmp_path / "photo.png"
    assert cv2.imwrite(str(photo), np.full((24, 24, 3), 128, np.uint8))
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not weights at all")
    with qtbot.waitSignal(window.session.image_opened, timeout=TIMEOUT):
        assert window.open_path(photo)
    assert window.open_path(bad, weights=True)
    assert str(bad.resolve()) in window.recent_files()
    with qtbot.waitSignal(window.session.run_failed, timeout=TIMEOUT):
        window.session.run_now()
    assert window.recent_files() == [str(photo.resolve())]
    assert not window.recent.tagged("weights")
    labels = [a.text() for a in window.actions_.recent_menu.actions()]
    assert not any("broken" in text for text in labels) and any("photo" in text for text in labels)
    assert make_window().recent_files() == [str(photo.resolve())]  # and the saved list forgot it too


def test_diff_mode_shows_where_side_a_errs_too(qtbot, session) -> None:
    """README step 2 asks to see where each model errs: |A - clean| beside |B - clean| and |B - A|."""
    from mdn_gui.compose import difference
    from mdn_gui.views.compare_view import CompareView

    view = CompareView(session.doc, session.doc.update_view)
    qtbot.addWidget(view)
    view.resize(500, 400)
    with qtbot.waitSignal(session.run_finished, timeout=TIMEOUT):
        session.run_now()
    a, b = session.doc.shown_pair()
    assert [view.diff_combo.itemData(i) for i in range(view.diff_combo.count())] == [
        "clean", "a_clean", "before"
    ]
    session.doc.update_view(mode="diff", diff_ref="a_clean")
    assert view.diff_combo.currentData() == "a_clean"
    assert view.canvas._labels[1].startswith(f"|{session.doc.layers[a].label} - clean|")
    heats = {}
    for ref in ("clean", "a_clean"):
        session.doc.update_view(diff_ref=ref)
        heats[ref] = view.export_array().astype(float)
    assert np.abs(heats["clean"] - heats["a_clean"]).mean() > 1  # two different pictures
    a_err = difference(session.doc.layers[a].image, session.doc.layers["clean"].image)
    b_err = difference(session.doc.layers[b].image, session.doc.layers["clean"].image)

    def follows(heat: np.ndarray, err: np.ndarray) -> float:  # how closely a map tracks an error
        return float(np.corrcoef(heat.mean(axis=2).ravel(), err.ravel())[0, 1])

    assert follows(heats["a_clean"], a_err) > 0.9 and follows(heats["a_clean"], a_err) > follows(
        heats["a_clean"], b_err
    )
    assert follows(heats["clean"], b_err) > 0.9


def test_the_sweeps_panel_does_not_say_finished_above_plots_a_noise_change_emptied(qtbot, session) -> None:
    from mdn_gui.controllers.analysis import AnalysisController
    from mdn_gui.plots.sweep_plot import SweepPlot

    analysis = AnalysisController(session)
    plot = SweepPlot(analysis)
    qtbot.addWidget(plot)
    with qtbot.waitSignal(
        analysis.sweep_running, timeout=TIMEOUT, check_params_cb=lambda kind, running: not running
    ):
        analysis.start_sweep("noise", xs=(15.0, 25.0))
    assert plot.status.text() == "Sweep finished." and plot.point_count("noise") > 0
    session.doc.update_noise(kind="speckle", level=0.024)
    assert plot.point_count("noise") == 0
    assert "Sweep finished" not in plot.status.text() and "gaussian" in plot.status.text()
    assert "cleared" in plot.status.text()


def test_closing_mid_run_hides_the_window_before_waiting_for_the_workers(
    qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    stop = window.session.shutdown

    def shutdown() -> None:
        seen.append(window.isVisible())
        stop()

    monkeypatch.setattr(window.session, "shutdown", shutdown)
    window.session.run_now("masked")
    assert window.session.running
    window.close()
    assert seen == [False] and not window.session.running


def test_after_cancel_side_b_keeps_the_users_choice_shown_as_not_run(qtbot, window: MainWindow) -> None:
    window.session_view(b="masked")
    window.session.run_now("masked")
    window.cancel()
    compare = window.compare
    assert window.doc.view.b == "masked" and "masked" not in window.doc.layers
    assert compare.b_combo.currentData() == "masked" and "not run" in compare.b_combo.currentText()
    assert "masked model not run (showing" in compare.canvas._labels[1]
    with qtbot.waitSignal(window.session.run_finished, timeout=TIMEOUT):
        window.session.run_now("masked")
    assert compare.b_combo.currentText() == window.doc.layers["masked"].label
    assert compare.canvas._labels[1].startswith("B: masked model")
    assert "not run" not in compare.canvas._labels[1]


def test_the_handout_lists_only_what_a_lesson_ran_and_says_what_each_psnr_was_measured_on() -> None:
    from mdn_gui.lesson_export import measured_rows

    first = LESSONS[0]
    assert first.runs == ("baseline",)
    m = Measurement(
        noise="poisson:2.5",
        psnr={"noisy": 19.61, "baseline": 26.77, "masked": 28.09},
        weights={"baseline": "baseline.safetensors, 20,350 it", "masked": "masked.safetensors, 20,350 it"},
        kept=1.0,
        sweep={"masked model": [(2.5, 27.61)]},
    )
    rows = dict(measured_rows(first, m))
    assert rows["PSNR baseline (whole image)"] == "26.77 dB" and "PSNR noisy (whole image)" in rows
    assert not any("masked" in key for key in rows if not key.startswith("sweep"))
    assert "tokens kept (first block)" not in rows
    assert rows["sweep on a centre crop: masked model"] == "2.5: 27.61 dB"
    both = next(lesson for lesson in LESSONS if set(lesson.runs) == {"baseline", "masked"})
    rows = dict(measured_rows(both, m))
    assert {"weights (masked)", "weights (baseline)", "PSNR masked (whole image)"} <= set(rows)


def test_the_clicked_pixels_attention_is_a_square_grid_not_a_strip(qtbot, session) -> None:
    from PySide6.QtCore import QPointF

    from mdn_gui.controllers.analysis import AnalysisController
    from mdn_gui.plots.mask_view import MaskView

    analysis = AnalysisController(session)
    view = MaskView(analysis)
    qtbot.addWidget(view)
    view.resize(340, 520)  # a narrow dock, as in the window
    view.show()
    with qtbot.waitSignal(session.run_finished, timeout=TIMEOUT):
        session.run_now("masked")
    view.set_mode("attention")
    with qtbot.waitSignal(analysis.attention_ready, timeout=TIMEOUT):
        view.set_pixel(21, 13)
    qtbot.wait(50)
    ws = view.attention.weights.shape[-1]
    box = view.heat_plot.getViewBox()
    top_left, bottom_right = box.mapViewToScene(QPointF(0, 0)), box.mapViewToScene(QPointF(ws, ws))
    width, height = abs(bottom_right.x() - top_left.x()), abs(bottom_right.y() - top_left.y())
    assert width == pytest.approx(height, rel=0.05)
    assert min(width, height) >= 12 * ws  # cells big enough to carry their crosses


def test_lesson_6_sweeps_the_mask_ratio_and_its_words_fit_unscrolled(
    qtbot, small_lessons: tuple, make_window: Callable[..., MainWindow]
) -> None:
    window = make_window()
    window.resize(1100, 800)  # a laptop's window: the words wrap to more lines than the dock's start
    index = next(i for i, lesson in enumerate(small_lessons) if lesson.live == "sweep")
    with qtbot.waitSignal(window.tour.lessons.measured, timeout=TIMEOUT):
        window.tour.start(index)
    qtbot.wait(100)  # let the dock take its new height
    ratio_curves = window.sweep_plot.curves["attention"]
    assert set(ratio_curves) == {"masked model", "baseline model"}
    for curve in ratio_curves.values():  # the "PSNR vs mask ratio" plot is drawn, not empty
        xs, _ = curve.getData()
        assert xs is not None and len(xs) == 8 and xs[0] == 0.0
    text = window.tour.panel.live.text()
    assert "Against the mask ratio, the masked model scores" in text and "with no mask" in text
    assert window.tour.panel.scroll.verticalScrollBar().maximum() == 0  # nothing cut off or hidden


def test_the_ratio_sentence_follows_the_measured_points() -> None:
    sweep = next(lesson for lesson in LESSONS if lesson.live == "sweep")
    m = Measurement(
        noise="poisson:2.5",
        sweep={"masked model": [(2.5, 27.0)], "baseline model": [(2.5, 26.0)]},
        ratio_sweep={
            "masked model": [(0.0, 20.13), (75.0, 27.61), (95.0, 25.0)],
            "baseline model": [(0.0, 26.69), (75.0, 25.9), (95.0, 26.691)],
        },
    )
    text = live_sentence(sweep, m)
    assert "the masked model scores 20.13 dB with no mask and peaks at 75 % (27.61 dB)" in text
    assert "the baseline model scores 26.69 dB with no mask." in text  # its best is no mask
    assert "mask ratio" not in live_sentence(sweep, dataclasses_replace(m, ratio_sweep={}))
    rows = dict(measured_rows(sweep, m))
    masked_row = rows["mask-ratio sweep on a centre crop: masked model"]
    assert masked_row == "0 %: 20.13 dB, 75 %: 27.61 dB, 95 %: 25.00 dB"


def test_legend_names_wrap_whole_not_at_their_hyphen(qtbot, session) -> None:
    from mdn_gui.controllers.analysis import AnalysisController
    from mdn_gui.plots.sweep_plot import SweepPlot

    analysis = AnalysisController(session)
    plot = SweepPlot(analysis)
    qtbot.addWidget(plot)
    with qtbot.waitSignal(
        analysis.sweep_running, timeout=TIMEOUT, check_params_cb=lambda kind, running: not running
    ):
        analysis.start_sweep("noise", xs=(15.0,))
    entry = r"<span style='white-space:nowrap'>(.*?)&nbsp;&nbsp;</span>"
    entries = re.findall(entry, plot.legends["noise"].text())
    names = {re.sub(r"<[^>]*>|&#9632;", "", entry).replace("&#8209;", "-").strip() for entry in entries}
    assert "non&#8209;local" in plot.legends["noise"].text()  # a hyphen Qt does not break at
    assert {"masked model", "baseline model", "non-local means"} <= names  # each in one unbreakable span


def test_the_lessons_sentence_says_when_the_user_changed_what_it_measured(
    qtbot, small_lessons: tuple, make_window: Callable[..., MainWindow]
) -> None:
    window = make_window()
    lessons, panel, doc = window.tour.lessons, window.tour.panel, window.session.doc
    with qtbot.waitSignal(lessons.measured, timeout=TIMEOUT):
        window.tour.start(1)
    measured = panel.live.text()
    assert measured.startswith("Here, on poisson:2.5") and panel.live.isEnabled()
    doc.update_noise(level=3.5)
    assert lessons.stale == "the noise"
    assert panel.live.text().startswith("Measured on this lesson's set-up, before you changed the noise")
    assert panel.live.text().endswith(measured) and not panel.live.isEnabled()  # greyed, kept
    window.session.set_model(attn_ratio=0.5)
    assert lessons.stale == "the noise and the model settings"
    doc.update_noise(level=2.5)  # back to the lesson's noise
    assert lessons.stale == "the model settings"
    with qtbot.waitSignal(lessons.measured, timeout=TIMEOUT):
        panel.apply_button.click()
    assert lessons.stale == "" and panel.live.isEnabled() and panel.live.text().startswith("Here, on")


def test_the_first_run_neither_widens_the_controls_nor_changes_the_zoom(
    qtbot, make_window: Callable[..., MainWindow]
) -> None:
    window = make_window()
    window.resize(1600, 1000)
    qtbot.wait(100)
    controls, canvas = window.docks[0], window.compare.canvas
    width, zoom = controls.width(), canvas.zoom
    with qtbot.waitSignal(window.session.run_finished, timeout=TIMEOUT):
        window.session.run_now("masked")
    qtbot.wait(100)
    assert window.model_panel.tiling.text().startswith("last run: whole image")
    assert controls.width() == width and canvas.zoom == pytest.approx(zoom)


def test_closing_while_a_tile_computes_ends_the_command_within_a_second(
    qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    from mdn_gui import workers

    release = threading.Event()
    started = threading.Event()

    def stuck_tile(self, job, cancel):  # a tile that takes a minute and cannot be interrupted
        started.set()
        release.wait(30)
        raise workers.Cancelled("released")

    monkeypatch.setattr(workers.Worker, "_run_network", stuck_tile)
    exits: list[int] = []
    window.exit_now = exits.append
    window.session.run_now("masked")
    assert started.wait(10)
    begun = time.monotonic()
    window.close()
    took = time.monotonic() - begun
    try:
        assert exits == [0] and took < 2.0 and not window.isVisible()
        assert window.settings.contains("geometry")  # the layout was saved before the exit
    finally:
        release.set()  # let the thread end, so the test leaves no running thread behind
        window.session.shutdown()


def test_lesson_3_shows_the_attention_of_its_pixel_before_it_is_measured(
    qtbot, small_lessons: tuple, make_window: Callable[..., MainWindow]
) -> None:
    window = make_window()
    index = next(i for i, lesson in enumerate(small_lessons) if lesson.pixel is not None)
    with qtbot.waitSignal(window.tour.lessons.measured, timeout=TIMEOUT):
        window.tour.start(index)
    view = window.mask_view
    assert view.current_mode() == "attention" and view.attention is not None  # landed before the picture
    assert view.attention.pixel == view.pixel == (63, 63)  # the lesson's pixel, kept inside the 64x64 chart
    assert view.attention.block == 0 and "Pixel x 63, y 63" in view.info.text()
    assert len(view.heat_dropped.getData()[0]) > 0  # the dropped keys are crossed out
