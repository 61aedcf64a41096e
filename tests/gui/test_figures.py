"""The Paper figure and Features panels: worker runs with progress and cancel, drawn as measured."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from mdn_gui.controllers.figures import FEATURES, PAPER_FIGURE, SAMPLE_PHOTOS
from mdn_gui.views.main_window import MainWindow
from model_core.eval.paper import PAPER_KINDS, paper_curve

TIMEOUT = 60_000


def run_to_end(qtbot, window: MainWindow, kind: str, start) -> list[tuple[int, int, str]]:
    seen: list[tuple[int, int, str]] = []
    window.figures.progress.connect(lambda k, done, total, text: seen.append((done, total, text)))
    with qtbot.waitSignal(window.figures.running, timeout=TIMEOUT,
                          check_params_cb=lambda k, running: k == kind and not running):
        start()
    return seen


def test_the_paper_figure_measures_the_19_points_of_every_series(qtbot, window: MainWindow) -> None:
    panel = window.paper_plot
    panel.crop.setValue(32)
    progress = run_to_end(qtbot, window, PAPER_FIGURE, panel.start)
    data = window.figures.paper
    assert data.complete and data.images == 1 and data.pixels == 32 * 32
    assert set(data.points) == {"masked model", "baseline model", "noisy input"}
    for kinds in data.points.values():
        assert list(kinds) == list(PAPER_KINDS)
        assert [len(kinds[k]) for k in PAPER_KINDS] == [5, 5, 4, 5]
    assert progress[-1][:2] == (38, 38)  # 19 noises x 2 networks
    assert "1,024 pixels" in panel.status.text() and "this image" in panel.status.text()
    for kind in PAPER_KINDS:  # the paper's readings are dashed, and named as the paper's
        dashed = panel.curve("psnr", kind, "paper: masked")
        assert dashed is not None and dashed.opts["pen"].style() == Qt.PenStyle.DashLine
        assert list(dashed.getData()[1]) == [p.masked for p in paper_curve(kind)]
        assert panel.curve("ssim", kind, "paper: masked") is None  # the paper gives no SSIM
        ours = panel.curve("ssim", kind, "masked model")
        assert ours is not None and ours.opts["pen"].style() == Qt.PenStyle.SolidLine
    assert "paper:&nbsp;baseline" in panel.legend.text()
    assert panel.run_button.isEnabled() and not panel.cancel_button.isEnabled()


def test_the_samples_are_centre_crops_of_the_set_size(window: MainWindow) -> None:
    window.figures.set_settings(source="samples", paper_crop=48)
    crops, source = window.figures.crops()
    assert [name for name, _ in crops] == list(SAMPLE_PHOTOS) and len(crops) >= 3
    assert all(crop.shape == (48, 48, 3) for _, crop in crops) and "sample photos" in source
    with pytest.raises(ValueError):
        window.figures.set_settings(source="elsewhere")


def test_cancel_stops_the_paper_figure(qtbot, window: MainWindow) -> None:
    figures = window.figures
    with qtbot.waitSignal(figures.running, timeout=TIMEOUT, check_params_cb=lambda k, r: not r):
        figures.start_paper()
        figures.cancel(PAPER_FIGURE)
    assert not figures.busy() and window.paper_plot.status.text() == "Cancelled."
    qtbot.wait(300)
    assert not figures.paper.complete


def test_the_features_panel_shows_each_model_with_its_distance(qtbot, window: MainWindow) -> None:
    panel = window.features_plot
    panel.crop.setValue(40)
    progress = run_to_end(qtbot, window, FEATURES, panel.start)
    reports = window.figures.features
    assert [r.label for r in reports] == ["baseline model", "masked model"]  # baseline | masked
    assert progress[-1][:2] == (8, 8)
    titles = panel.titles()
    assert titles == [f"{r.label}: D = {r.distance:.3f}" for r in reports]
    assert window.figures.features_shape == (40, 40) and "1,600 pixels" in panel.status.text()
    window.session.load_array("other", window.doc.clean.copy())  # another image: they were its
    assert window.figures.features == [] and panel.titles() == []
