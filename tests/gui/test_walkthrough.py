"""The README's teaching walkthrough, step by step, as a teacher would click through it."""

from __future__ import annotations

from mdn_gui.controllers.analysis import AnalysisController
from mdn_gui.controllers.session import SessionController
from mdn_gui.plots.mask_view import MaskView
from mdn_gui.state import BASELINE, MASKED

TIMEOUT = 20_000


def test_mask_view_follows_layer_b_when_the_pickers_change(qtbot, session: SessionController) -> None:
    """QA step 2-3: with masked on B, then baseline (run unmasked) on B, the Masks panel kept
    the masked run's keep-map ("24 % kept") although it describes B's run."""
    analysis = AnalysisController(session)
    view = MaskView(analysis)
    qtbot.addWidget(view)
    with qtbot.waitSignal(session.run_finished, timeout=TIMEOUT):
        session.run_now("masked")
    with qtbot.waitSignal(session.run_finished, timeout=TIMEOUT):
        session.run_now("baseline", attn_ratio=0.0)
    session.doc.update_view(a=BASELINE, b=MASKED)
    assert "no attention mask" not in view.info.text()
    session.doc.update_view(a=MASKED, b=BASELINE)
    assert "100.0% kept" in view.info.text() and "no attention mask" in view.info.text()


def test_mask_ratio_sweep_names_the_noise_it_was_measured_on(qtbot, session: SessionController) -> None:
    """QA step 6: the PSNR-vs-mask-ratio curves were measured on the noisy image of the time;
    after Gaussian 25 became Gaussian 50 nothing told they were not measured on the new one."""
    from mdn_gui.plots.sweep_plot import SweepPlot

    analysis = AnalysisController(session)
    plot = SweepPlot(analysis)
    qtbot.addWidget(plot)
    with qtbot.waitSignal(
        analysis.sweep_running, timeout=TIMEOUT, check_params_cb=lambda kind, running: not running
    ):
        analysis.start_sweep("attention", xs=(0.0, 0.75))
    session.set_noise(level=50.0)
    assert session.doc.sweeps["attention"]
    assert "gaussian:25" in plot.plots["attention"].getPlotItem().titleLabel.text
    session.doc.clear_sweep("attention")
    assert plot.plots["attention"].getPlotItem().titleLabel.text == "PSNR vs mask ratio"


def test_level_axis_reads_in_the_noise_panel_units(qtbot, session: SessionController) -> None:
    """QA step 6: for speckle the level axis read "speckle level (x0.001)" with ticks 10..60,
    while the noise panel and the paper give 0.018..0.04."""
    from mdn_gui.plots.sweep_plot import SweepPlot

    plot = SweepPlot(AnalysisController(session))
    qtbot.addWidget(plot)
    session.set_noise(kind="speckle")
    axis = plot.plots["noise"].getAxis("bottom")
    axis.resizeEvent()  # pyqtgraph picks its SI prefix when the axis is laid out
    assert "x0.001" not in axis.labelString() and axis.scale == 1.0


def test_attention_of_the_clicked_pixel_follows_a_new_noisy_image(qtbot, session: SessionController) -> None:
    """QA step 3: after a click, a new noise level left the old image's attention drawn over
    the new noisy image; it is probed again for the same pixel."""
    analysis = AnalysisController(session)
    view = MaskView(analysis)
    qtbot.addWidget(view)
    with qtbot.waitSignal(session.run_finished, timeout=TIMEOUT):
        session.run_now("masked")
    with qtbot.waitSignal(analysis.attention_ready, timeout=TIMEOUT):
        view.set_pixel(20, 10)
    old = view.attention
    with qtbot.waitSignal(analysis.attention_ready, timeout=TIMEOUT):
        session.set_noise(level=50.0)
    assert view.attention is not old and view.pixel == (10, 20)
    assert "Pixel x 20, y 10" in view.info.text()


def test_mask_ratio_sweep_progress_speaks_in_percent_as_its_axis(qtbot, session: SessionController) -> None:
    """QA step 6: the status read "masked model at 0.75 (6/16)" under an axis in percent."""
    analysis = AnalysisController(session)
    messages: list[str] = []
    analysis.sweep_progress.connect(lambda done, total, message: messages.append(message))
    with qtbot.waitSignal(
        analysis.sweep_running, timeout=TIMEOUT, check_params_cb=lambda kind, running: not running
    ):
        analysis.start_sweep("attention", xs=(0.75,))
    assert messages and all(m.endswith("at 75%") for m in messages)


def test_mask_view_says_whose_run_it_shows_and_why_a_std_map_is_flat(
    qtbot, session: SessionController
) -> None:
    """QA steps 3-4: the Masks panel did not say which model's run it showed (B's, which may
    not be the selected model), and 8 passes of an unmasked run gave a black std map with
    "mean 0.00" and no word that identical passes cannot vary."""
    analysis = AnalysisController(session)
    view = MaskView(analysis)
    qtbot.addWidget(view)
    session.set_model(passes=2)
    with qtbot.waitSignal(session.run_finished, timeout=TIMEOUT):
        session.run_now("baseline", attn_ratio=0.0)
    session.doc.update_view(b=BASELINE)
    view.set_mode("std")
    assert "baseline model" in view.info.text() and "no mask" in view.info.text()
    with qtbot.waitSignal(session.run_finished, timeout=TIMEOUT):
        session.run_now("masked")
    session.doc.update_view(b=MASKED)
    assert "masked model" in view.info.text() and "no mask" not in view.info.text()
    view.set_mode("keep")
    assert view.info.text().startswith("masked model")


def test_mask_ratio_marker_says_which_model_was_trained_there(qtbot, session: SessionController) -> None:
    """QA step 6: the dashed line read "trained 75%" between the masked and the baseline
    curves; the baseline was trained without masks."""
    from mdn_gui.plots.sweep_plot import SweepPlot

    plot = SweepPlot(AnalysisController(session))
    qtbot.addWidget(plot)
    assert "masked" in plot.ratio_line.label.format
