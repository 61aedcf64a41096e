"""Controllers without a window: noise, runs, cancelling, stale results, errors, sweeps."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mdn_gui import memory, workers
from mdn_gui.catalog import ModelCatalog
from mdn_gui.classical import bm3d_available
from mdn_gui.controllers.analysis import AnalysisController
from mdn_gui.controllers.session import SessionController
from mdn_gui.jobs import GenerationBoard, JobFailed, MetricsJob, metrics_channel
from mdn_gui.state import CLASSICAL, MASKED, NOISY
from mdn_gui.workers import Worker
from model_core.imageio import DEFAULT_MAX_PIXELS, ImageReadError, write_image

TIMEOUT = 20_000


@pytest.fixture
def analysis(session: SessionController) -> AnalysisController:
    return AnalysisController(session)


def test_opening_an_image_adds_noise_and_measures_it(
    qtbot, session: SessionController, tmp_path: Path
) -> None:
    from model_core.imageio import write_image

    path = write_image(tmp_path / "photo.png", np.full((40, 48, 3), 0.5, np.float32))
    session.open_image(path)
    doc = session.doc
    assert doc.source_name == "photo.png" and doc.image_size == (40, 48)
    assert doc.noisy is not None and not np.array_equal(doc.noisy, doc.clean)
    qtbot.waitUntil(lambda: NOISY in doc.metrics, timeout=TIMEOUT)
    assert 0 < doc.metrics[NOISY].psnr < 60 and doc.metrics[NOISY].ssim is not None


def test_real_noisy_photo_has_no_metrics(qtbot, session: SessionController, tmp_path: Path) -> None:
    from model_core.imageio import write_image

    path = write_image(tmp_path / "real.png", np.random.default_rng(0).random((32, 32, 3), np.float32))
    session.open_image(path, noisy=True)
    with qtbot.waitSignal(session.run_finished, timeout=TIMEOUT):
        session.run_now()
    assert session.doc.clean is None and session.doc.metrics == {}


def test_noise_changes_are_applied_and_stale_results_dropped(qtbot, session: SessionController) -> None:
    with qtbot.waitSignal(session.run_finished, timeout=TIMEOUT):
        session.run_now()
    before = session.doc.noisy.copy()
    session.set_noise(kind="poisson")
    assert session.doc.noise.level == 2.5  # a new type starts at its default level
    assert not np.array_equal(before, session.doc.noisy)
    assert MASKED not in session.doc.layers  # computed from the old noisy image
    with pytest.raises(ValueError):
        session.set_noise(level=1000.0)


def test_slow_noise_goes_to_the_worker(qtbot, session: SessionController) -> None:
    session.noise_preview.cost.record("speckle", 1, 1.0)  # pretend it is very slow
    before = session.doc.noisy.copy()
    session.set_noise(kind="speckle")
    assert np.array_equal(before, session.doc.noisy)  # not computed on the GUI thread
    qtbot.waitUntil(lambda: not np.array_equal(before, session.doc.noisy), timeout=TIMEOUT)


def test_slow_noise_lands_on_the_gui_thread(qtbot, session: SessionController) -> None:
    threads: list[bool] = []
    session.doc.layers_changed.connect(
        lambda key: threads.append(threading.current_thread() is threading.main_thread())
    )
    session.noise_preview.cost.record("speckle", 1, 1.0)
    session.set_noise(kind="speckle")
    time.sleep(0.5)  # the worker finishes meanwhile; its result must wait for the event loop
    assert threads == []
    qtbot.waitUntil(lambda: bool(threads), timeout=TIMEOUT)
    assert all(threads)


def test_run_paints_tiles_and_lands_with_metrics_and_masks(qtbot, session: SessionController) -> None:
    session.set_model(tile=32, passes=2)
    painted: list[tuple[int, int, int, int]] = []
    session.doc.layer_updated.connect(lambda key, box: painted.append(box))
    with qtbot.waitSignal(session.run_finished, timeout=TIMEOUT) as blocker:
        session.run_now()
    assert blocker.args == [MASKED]
    doc = session.doc
    assert len(painted) >= 4  # progressive painting of the first pass
    assert not doc.layers[MASKED].partial and doc.metrics[MASKED].ssim is not None
    record = doc.records[MASKED]
    assert record.num_blocks == 4 and sorted(record.keep_maps) == [0, 1, 2, 3]
    assert record.keep_maps[0].shape == (64, 64) and 0.1 < record.keep_maps[0].mean() < 0.4
    assert record.std is not None and record.seconds > 0
    assert doc.view.b == MASKED


def test_cancel_stops_a_run(qtbot, session: SessionController) -> None:
    session.set_model(tile=16, passes=16)
    progress: list[int] = []
    session.run_progress.connect(lambda done, total, msg: progress.append(done))
    landed: list[str] = []
    session.run_finished.connect(landed.append)
    session.run_now()
    qtbot.waitUntil(lambda: len(progress) >= 2, timeout=TIMEOUT)
    with qtbot.waitSignal(session.backend.worker.cancelled, timeout=TIMEOUT):
        session.cancel()
    assert not session.running and MASKED not in session.doc.layers
    qtbot.wait(50)
    assert landed == []


def test_changing_a_parameter_drops_the_stale_run(qtbot, session: SessionController) -> None:
    session.set_model(tile=16, passes=8)
    session.auto_run = True
    first = session.run_now()
    started: list[int] = []
    session.run_progress.connect(lambda done, total, msg: started.append(done))
    qtbot.waitUntil(lambda: len(started) >= 1, timeout=TIMEOUT)
    finished: list[str] = []
    session.run_finished.connect(finished.append)
    session.set_model(seed=7, passes=1)  # cancels run A, schedules run B (debounced)
    qtbot.waitUntil(lambda: bool(finished), timeout=TIMEOUT)
    qtbot.wait(100)
    assert finished == [MASKED]
    assert session.doc.records[MASKED].gen > first  # B's result, not A's


def test_bad_weights_report_an_error_and_leave_the_session_usable(
    qtbot, session: SessionController, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a weights file at all")
    session.open_weights(bad)
    with qtbot.waitSignal(session.run_failed, timeout=TIMEOUT) as blocker:
        session.run_now()
    assert "broken.safetensors" in blocker.args[0]
    logged = capsys.readouterr().err.strip().splitlines()
    assert len(logged) == 1 and "broken.safetensors" in logged[0]  # an expected error: no traceback
    assert not session.running
    with qtbot.waitSignal(session.run_finished, timeout=TIMEOUT):
        session.run_now("masked")


def test_missing_model_is_reported_not_run(qtbot, chart: np.ndarray) -> None:
    s = SessionController(catalog=ModelCatalog(), debounce_ms=30)
    try:
        assert s.doc.model.model == "nlm"  # no network: start on the classical peer
        s.auto_run = False
        s.load_array("chart", chart)
        with qtbot.waitSignal(s.run_failed, timeout=TIMEOUT) as blocker:
            s.run_now("masked")
        assert "not found" in blocker.args[0]
        with qtbot.waitSignal(s.run_finished, timeout=TIMEOUT):
            s.run_now("nlm")
        assert CLASSICAL in s.doc.layers
    finally:
        s.shutdown()


def test_attention_sweep_produces_points_as_they_come(
    qtbot, session: SessionController, analysis: AnalysisController
) -> None:
    counts: list[int] = []
    session.doc.sweep_changed.connect(
        lambda kind: counts.append(sum(len(v) for v in session.doc.sweeps[kind].values()))
    )
    with qtbot.waitSignal(
        analysis.sweep_running, timeout=TIMEOUT, check_params_cb=lambda kind, running: not running
    ):
        analysis.start_sweep("attention", xs=(0.0, 0.5))
    curves = session.doc.sweeps["attention"]
    assert set(curves) == {"masked model", "baseline model"}
    assert [x for x, _ in curves["masked model"]] == [0.0, 50.0]
    assert counts[1:] == [1, 2, 3, 4]  # one point at a time (the first event is the clear)


def test_noise_sweep_and_its_cancel(qtbot, session: SessionController, analysis: AnalysisController) -> None:
    with qtbot.waitSignal(
        analysis.sweep_running, timeout=TIMEOUT, check_params_cb=lambda kind, running: not running
    ):
        analysis.start_sweep("noise", xs=(15.0,))
    assert set(session.doc.sweeps["noise"]) == {
        "noisy input",
        "masked model",
        "baseline model",
        "non-local means",
    }
    analysis.start_sweep("noise", xs=(5.0, 10.0, 15.0, 20.0, 25.0, 30.0))
    analysis.cancel_sweep()
    assert analysis.sweeping is None
    qtbot.wait(200)
    assert sum(len(v) for v in session.doc.sweeps["noise"].values()) < 6 * 4


def test_attention_probe(qtbot, session: SessionController, analysis: AnalysisController) -> None:
    with qtbot.waitSignal(analysis.attention_ready, timeout=TIMEOUT) as blocker:
        analysis.probe_attention((10, 20), 1)
    view = blocker.args[0]
    assert view.weights.shape == (2, 4, 4)
    assert np.allclose(view.weights.sum(axis=(1, 2)), 1.0, atol=1e-4)


def test_keep_maps_of_huge_images_are_thinned() -> None:
    from mdn_gui.workers import probe_blocks

    assert probe_blocks(np.zeros((64, 64, 3)), 24) == tuple(range(24))
    assert probe_blocks(np.zeros((4000, 4000, 3)), 24) == (0, 8, 15, 23)  # 4 maps fit the budget
    assert probe_blocks(np.zeros((9000, 9000, 3)), 24) == (0,)


def test_worker_logs_expected_errors_in_one_line_and_bugs_with_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    board = GenerationBoard()
    worker = Worker(board)  # no thread: submit runs here
    failures: list[JobFailed] = []
    worker.failed.connect(failures.append)
    image = np.zeros((16, 16, 3), np.float32)
    for error in (ValueError("image is too small"), OSError("disk gone"), RuntimeError("a bug")):

        def fail(*_: object, error: Exception = error) -> None:
            raise error

        monkeypatch.setattr(workers, "measure", fail)
        worker.submit(MetricsJob(board.issue(metrics_channel(NOISY)), NOISY, 0, image, image))
        err = capsys.readouterr().err
        if isinstance(error, RuntimeError):
            assert "Traceback" in err and "RuntimeError: a bug" in err
        else:
            assert err == f"mdn-gui: metrics:{NOISY} failed: {error}\n"
    assert [f.message for f in failures] == ["image is too small", "disk gone", "a bug"]


def test_images_too_large_for_the_memory_are_refused(
    session: SessionController, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert memory.max_image_pixels(10**15) == DEFAULT_MAX_PIXELS
    assert memory.max_image_pixels(2 * 10**9) == 10**7
    monkeypatch.setattr(memory, "available_memory", lambda: 1000 * memory.BYTES_PER_PIXEL)
    big = write_image(tmp_path / "big.png", np.zeros((40, 50, 3), np.float32))
    with pytest.raises(
        ImageReadError, match=r"big\.png is 50x40 \(0\.002 megapixels\).*at most 0\.001 megapixels"
    ):
        session.open_image(big)
    assert session.doc.source_name == "chart"  # the open image stays
    small = write_image(tmp_path / "small.png", np.zeros((20, 30, 3), np.float32))
    session.open_image(small)
    assert session.doc.image_size == (20, 30)


def test_a_run_asked_for_while_the_noise_is_computed_waits_for_it(
    qtbot, session: SessionController, chart: np.ndarray
) -> None:
    """QA: with slow noise (Poisson on a Kodak photo) Run said "Open an image first." after a
    new image was opened, and after a noise change it ran on the old noisy image, then dropped it."""
    failed: list[str] = []
    session.run_failed.connect(failed.append)
    session.noise_preview.cost.record("gaussian", 1, 1.0)  # pretend it is very slow
    session.load_array("again", chart)
    assert session.doc.noisy is None
    with qtbot.waitSignal(session.run_finished, timeout=5_000):
        session.run_now()
    assert failed == [] and MASKED in session.doc.layers
    session.noise_preview.cost.record("speckle", 1, 1.0)
    session.set_noise(kind="speckle")
    with qtbot.waitSignal(session.run_finished, timeout=5_000):
        session.run_now()
    assert failed == [] and "speckle" in session.doc.layers[NOISY].label


def test_cancel_keeps_the_noisy_image_in_step_with_the_noise_settings(
    qtbot, session: SessionController
) -> None:
    """QA: Cancel during slow noise left the panel at the new noise and the image at the old."""
    session.noise_preview.cost.record("speckle", 1, 1.0)
    session.set_noise(kind="speckle")
    session.cancel()
    qtbot.waitUntil(lambda: "speckle" in session.doc.layers[NOISY].label, timeout=5_000)


def test_sweeps_of_another_noise_type_or_image_are_dropped(
    qtbot, session: SessionController, analysis: AnalysisController, chart: np.ndarray
) -> None:
    """QA: after a Gaussian level sweep, picking Poisson relabelled its axis "poisson level"
    under the Gaussian curves; a new image kept the old image's curves."""
    with qtbot.waitSignal(
        analysis.sweep_running, timeout=TIMEOUT, check_params_cb=lambda kind, running: not running
    ):
        analysis.start_sweep("noise", xs=(15.0,))
    with qtbot.waitSignal(
        analysis.sweep_running, timeout=TIMEOUT, check_params_cb=lambda kind, running: not running
    ):
        analysis.start_sweep("attention", xs=(0.5,))
    session.set_noise(level=20.0)  # same type: the level sweep still applies
    assert session.doc.sweeps["noise"] and session.doc.sweeps["attention"]
    session.set_noise(kind="poisson")
    assert not session.doc.sweeps["noise"]
    analysis.start_sweep("noise", xs=(1.0, 2.0, 3.0, 4.0))
    session.load_array("another", chart[::-1].copy())
    assert analysis.sweeping is None
    qtbot.wait(300)
    assert not session.doc.sweeps["noise"] and not session.doc.sweeps["attention"]


def test_noise_never_measured_on_a_large_image_goes_to_the_worker(
    qtbot, catalog: ModelCatalog, chart: np.ndarray
) -> None:
    """QA: the first noise of each type ran on the GUI thread to measure it: opening a 54 MP
    photo froze the window for seconds."""
    s = SessionController(catalog=catalog, debounce_ms=30)
    s.auto_run = False
    try:
        s.load_array("big", np.full((1200, 1000, 3), 0.5, np.float32))
        assert s.doc.noisy is None  # not computed on the GUI thread
        qtbot.waitUntil(lambda: s.doc.noisy is not None, timeout=TIMEOUT)
        s.set_noise(kind="poisson")
        assert "gaussian" in s.doc.layers[NOISY].label
        qtbot.waitUntil(lambda: "poisson" in s.doc.layers[NOISY].label, timeout=TIMEOUT)
        s.set_noise(kind="speckle")  # small images are still measured on the GUI thread
        s.load_array("small", chart)
        assert s.doc.noisy is not None
    finally:
        s.shutdown()


@pytest.mark.skipif(not bm3d_available(), reason="needs the optional bm3d package")
def test_cancel_stops_bm3d_at_once(qtbot, catalog: ModelCatalog, chart: np.ndarray) -> None:
    """QA: BM3D (25 s for a 451x300 photo, far longer for a large one) ran on after Cancel,
    and every later job (runs, noise, metrics, sweeps) waited silently behind it."""
    s = SessionController(catalog=catalog, debounce_ms=30)
    s.auto_run = False
    try:
        s.load_array("chart", np.tile(chart, (6, 6, 1)))  # 384x384: BM3D takes seconds
        qtbot.waitUntil(lambda: s.doc.noisy is not None, timeout=TIMEOUT)
        started: list[str] = []
        s.run_progress.connect(lambda done, total, message: started.append(message))
        s.run_now("bm3d")
        qtbot.waitUntil(lambda: bool(started), timeout=TIMEOUT)
        with qtbot.waitSignal(s.backend.worker.cancelled, timeout=TIMEOUT):
            s.cancel()
        assert not multiprocessing.active_children()  # BM3D's process is gone
        s.load_array("small", chart)  # and a run that is not cancelled lands as before
        with qtbot.waitSignal(s.run_finished, timeout=60_000):
            s.run_now("bm3d")
        assert s.doc.metrics[CLASSICAL].psnr > s.doc.metrics[NOISY].psnr
    finally:
        s.shutdown()


def test_a_failed_noise_job_ends_the_runs_waiting_for_it(
    qtbot, session: SessionController, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review: a noise job that raised (MemoryError on a huge photo) left the noise 'pending' for
    ever: every later Run waited silently, and a scripted --run never ended."""
    from mdn_gui import workers

    def broken(*args: object, **kwargs: object) -> None:
        raise MemoryError("not enough memory for the noise")

    monkeypatch.setattr(workers, "apply_noise", broken)
    failed: list[str] = []
    session.run_failed.connect(failed.append)
    session.noise_preview.cost.record("speckle", 1, 1.0)  # to the worker
    session.set_noise(kind="speckle")
    assert session.run_now() is None  # waits for the noise...
    qtbot.waitUntil(lambda: bool(failed), timeout=TIMEOUT)  # ...which fails: so does the run
    assert not session.noise_preview.pending and not session.running
    monkeypatch.undo()
    session.set_noise(kind="gaussian")  # on the GUI thread again: Run works
    with qtbot.waitSignal(session.run_finished, timeout=TIMEOUT):
        assert session.run_now() is not None


def test_a_run_waiting_for_the_noise_can_be_cancelled(qtbot, session: SessionController) -> None:
    """Review: a waiting run did not count as running, so Cancel (and Esc) stayed disabled."""
    states: list[bool] = []
    session.running_changed.connect(states.append)
    session.noise_preview.cost.record("speckle", 1, 1.0)
    session.set_noise(kind="speckle")
    assert session.run_now() is None
    assert session.running and states[-1] is True
    session.cancel()
    assert not session.running and states[-1] is False
    qtbot.waitUntil(lambda: not session.noise_preview.pending, timeout=TIMEOUT)
    assert MASKED not in session.doc.layers  # the cancelled run did not start when the noise landed
