"""Large images: decoding and difference heatmaps run in the worker, never on the GUI thread.

The tests make small images take the worker path by lowering the pixel threshold, so they
stay quick while exercising what a 54 MP photo does.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mdn_gui import memory
from mdn_gui.app import main
from mdn_gui.compose import difference, heatmap, nice_scale
from mdn_gui.controllers import opening
from mdn_gui.controllers.difference import DiffRenderer
from mdn_gui.controllers.session import SessionController
from mdn_gui.state import CLEAN, MASKED, NOISY
from mdn_gui.views import diff_image
from mdn_gui.views.compare_view import CompareView
from mdn_gui.views.convert import from_qimage, lookup_table
from mdn_gui.views.main_window import MainWindow
from model_core.imageio import read_image, write_image

TIMEOUT = 20_000


def photo(tmp_path: Path, name: str = "big.png", size: tuple[int, int] = (40, 48)) -> Path:
    pixels = np.random.default_rng(0).random((*size, 3), dtype=np.float32)
    return write_image(tmp_path / name, pixels)


def record_decoding_threads(monkeypatch: pytest.MonkeyPatch, delay: float = 0.0) -> list[bool]:
    """Wraps the decoder: each call appends whether it ran on the GUI thread."""
    threads: list[bool] = []
    original = memory.read_image

    def read(*args: object, **kwargs: object) -> object:
        threads.append(threading.current_thread() is threading.main_thread())
        time.sleep(delay)
        return original(*args, **kwargs)

    monkeypatch.setattr(memory, "read_image", read)
    return threads


def expected_heat(after: np.ndarray, reference: np.ndarray) -> np.ndarray:
    diff = difference(after, reference)
    return heatmap(diff, nice_scale(diff), lookup_table())


# ---------------------------------------------------------------------- opening


def test_a_large_image_is_decoded_in_the_worker(
    qtbot, session: SessionController, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = record_decoding_threads(monkeypatch)
    session.opener.max_gui_pixels = 100
    path = photo(tmp_path)
    assert session.open_image(path) is False  # queued, not opened yet
    assert session.doc.source_name == "chart"  # lands through the event loop
    with qtbot.waitSignal(session.image_opened, timeout=TIMEOUT) as blocker:
        pass
    assert blocker.args == [str(path), False]
    assert threads == [False]
    doc = session.doc
    assert doc.source_name == "big.png" and doc.image_size == (40, 48)
    assert np.array_equal(doc.clean, read_image(path).rgb)
    assert doc.layers[CLEAN].display is not None  # converted for display in the worker too
    qtbot.waitUntil(lambda: doc.noisy is not None, timeout=TIMEOUT)


def test_small_images_still_open_at_once(
    session: SessionController, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = record_decoding_threads(monkeypatch)
    assert session.open_image(photo(tmp_path)) is True
    assert session.doc.source_name == "big.png" and threads == [True]


def test_a_newer_image_supersedes_one_being_decoded(
    qtbot, session: SessionController, tmp_path: Path, chart: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_decoding_threads(monkeypatch, delay=0.3)
    session.opener.max_gui_pixels = 100
    pending: list[str] = []
    session.opener.pending_changed.connect(pending.append)
    assert session.open_image(photo(tmp_path, "first.png")) is False
    assert session.opener.pending and pending[-1].startswith("Opening first.png")
    assert session.open_image(photo(tmp_path, "second.png")) is False
    qtbot.waitUntil(lambda: session.doc.source_name == "second.png", timeout=TIMEOUT)
    qtbot.wait(400)
    assert session.doc.source_name == "second.png" and pending[-1] == ""
    # A sample opened meanwhile wins too, and Cancel drops a pending image.
    session.open_image(photo(tmp_path, "third.png"))
    session.load_array("sample", chart)
    session.open_image(photo(tmp_path, "fourth.png"))
    session.cancel()
    assert not session.opener.pending
    qtbot.wait(800)
    assert session.doc.source_name == "sample"


def test_a_run_asked_for_while_an_image_is_decoded_runs_on_it(
    qtbot, session: SessionController, tmp_path: Path
) -> None:
    session.opener.max_gui_pixels = 100
    session.open_image(photo(tmp_path))
    assert session.run_now() is None  # waits for the image (and its noise)
    with qtbot.waitSignal(session.run_finished, timeout=TIMEOUT):
        pass
    assert session.doc.layers[MASKED].image.shape == (40, 48, 3)


def test_a_large_result_is_decoded_in_the_worker(
    qtbot, session: SessionController, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = record_decoding_threads(monkeypatch)
    session.result_opener.max_gui_pixels = 100
    with pytest.raises(ValueError, match=r"big\.png is 48x40, the image is 64x64"):
        session.open_result(photo(tmp_path))  # told by the header, before decoding
    assert threads == []
    result = photo(tmp_path, "result.png", (64, 64))
    key = session.open_result(result)
    assert key not in session.doc.layers
    qtbot.waitUntil(lambda: key in session.doc.layers, timeout=TIMEOUT)
    assert threads == [False] and session.doc.view.b == key
    assert session.doc.layers[key].display is not None
    qtbot.waitUntil(lambda: key in session.doc.metrics, timeout=TIMEOUT)


def test_an_exif_rotated_result_is_sized_as_displayed(
    qtbot, session: SessionController, tmp_path: Path
) -> None:
    """Review: the header check ignored EXIF orientation: a rotated result of the right size was
    refused, one of the wrong size raised inside a Qt slot (a traceback, and nothing shown)."""
    from PIL import Image

    session.load_array("portrait", np.full((48, 40, 3), 0.5, np.float32))  # 40 wide, 48 tall
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 48 wide x 40 tall, displayed rotated: 40 x 48
    pixels = (np.random.default_rng(0).random((40, 48, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    session.result_opener.max_gui_pixels = 100  # decoded in the worker
    key = session.open_result(tmp_path / "rotated.jpg")
    qtbot.waitUntil(lambda: key in session.doc.layers, timeout=TIMEOUT)
    assert session.doc.layers[key].image.shape == (48, 40, 3)
    Image.fromarray(pixels).save(tmp_path / "flat.jpg", quality=95)  # 48 x 40: the wrong size
    with pytest.raises(ValueError, match="is 48x40, the image is 40x48"):
        session.open_result(tmp_path / "flat.jpg")


def test_a_corrupt_large_file_gives_the_same_message_as_a_small_one(
    qtbot, window: MainWindow, tmp_path: Path
) -> None:
    good = photo(tmp_path, "cut.png", (64, 64)).read_bytes()
    bad = tmp_path / "cut.png"
    bad.write_bytes(good[: len(good) // 2])  # the header reads, the pixels do not
    assert not window.open_path(bad)
    message = window.banner.label.text()
    assert "cut.png" in message and "truncated" in message
    window.banner.hide()
    window.session.opener.max_gui_pixels = 100
    assert window.open_path(bad)  # queued: the worker reports the error
    assert window.busy.isVisible()
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=TIMEOUT)
    assert window.banner.error and window.banner.label.text() == message
    assert window.doc.source_name == "chart" and not window.busy.isVisible()


def test_the_window_shows_a_large_image_when_it_lands(qtbot, window: MainWindow, tmp_path: Path) -> None:
    window.session.opener.max_gui_pixels = 100
    path = photo(tmp_path)
    assert window.open_path(path)
    assert window.busy.isVisible() and "big.png" in window.busy.text()
    assert window.actions_.cancel.isEnabled()  # Esc stops the decoding
    qtbot.waitUntil(lambda: "big.png" in window.windowTitle(), timeout=TIMEOUT)
    assert window.size_label.text() == "48 x 40 px"
    assert window.recent_files()[0] == str(path.resolve())
    qtbot.waitUntil(lambda: not window.busy.isVisible(), timeout=TIMEOUT)
    assert not window.actions_.cancel.isEnabled()
    window.open_path(path)
    window.actions_.cancel.trigger()
    assert not window.busy.isVisible() and not window.session.opener.pending


def test_a_scripted_start_waits_for_a_large_image(
    qtbot, tmp_path: Path, tiny_weights: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(opening, "GUI_MAX_PIXELS", 100)
    image = photo(tmp_path, "photo.png", (96, 128))
    shot = tmp_path / "shot.png"
    files = ["--open", str(image), "--weights", str(tiny_weights["masked"]), "--screenshot", str(shot)]
    assert main(["--model", "masked", "--run", "--quit", "--size", "900x600", *files]) == 0
    assert shot.exists()
    bad = tmp_path / "bad.png"
    bad.write_bytes(image.read_bytes()[:2000])
    assert main(["--open", str(bad), "--quit"]) == 2


# ---------------------------------------------------------------------- difference heatmaps


def test_diff_mode_of_a_large_image_is_computed_off_the_gui_thread(qtbot, window: MainWindow) -> None:
    with qtbot.waitSignal(window.session.run_finished, timeout=TIMEOUT):
        window.session.run_now()
    window.compare.diff.max_gui_pixels = 0
    window.session_view(mode="diff")
    # Nothing was computed on the GUI thread: the worker's answer needs the event loop.
    assert window.busy.isVisible() and "difference" in window.busy.text()
    assert "computing" in window.compare.canvas.label_boxes()[0][0]
    qtbot.waitUntil(lambda: not window.busy.isVisible(), timeout=TIMEOUT)
    layers = window.doc.layers
    shown = from_qimage(window.compare.canvas._b)
    assert np.array_equal(shown, expected_heat(layers[MASKED].image, layers[CLEAN].image))
    assert window.compare.canvas._colorbar is not None
    # Export uses the heatmap at hand; while the worker computes a new one, export computes the
    # current one itself (never the stale one) and queues nothing more.
    requests: list[object] = []
    renderer = window.compare.diff.renderer
    original = renderer.request
    renderer.request = lambda *args: (requests.append(args), original(*args))[1]
    assert np.array_equal(window.compare.export_array(), shown)
    window.doc.set_layer(MASKED, layers[MASKED].image * 0.5)  # the heatmap is stale now...
    requests.clear()  # (the view asked the worker for the new one)
    exported = window.compare.export_array()  # ...so export computes it here
    assert np.array_equal(exported, expected_heat(layers[MASKED].image, layers[CLEAN].image))
    assert requests == []
    qtbot.waitUntil(lambda: not window.busy.isVisible(), timeout=TIMEOUT)
    window.session_view(mode="split")  # leaving diff mode drops a pending heatmap
    window.session_view(diff_ref="before", mode="diff")
    window.session_view(mode="split")
    assert not window.busy.isVisible()


def test_tiles_of_a_run_update_only_their_part_of_the_heatmap(
    qtbot, session: SessionController, monkeypatch: pytest.MonkeyPatch
) -> None:
    """QA: in diff mode every tile of a run recomputed the whole heatmap on the GUI thread
    (0.7 s a tile for a 12 MP photo)."""
    doc = session.doc
    clean = doc.clean
    assert clean is not None
    doc.set_layer(MASKED, clean * 0.5, partial=True)
    doc.update_view(a=NOISY, b=MASKED, mode="diff")
    view = CompareView(doc, doc.update_view, renderer=DiffRenderer(session.board, session.image_backend))
    qtbot.addWidget(view)
    view.diff.max_gui_pixels = 0
    view.refresh()
    qtbot.waitUntil(lambda: not view.diff.pending, timeout=TIMEOUT)
    first = from_qimage(view.canvas._b)
    assert np.array_equal(first, expected_heat(clean * 0.5, clean))
    computed: list[tuple[int, ...]] = []
    original = diff_image.difference
    monkeypatch.setattr(diff_image, "difference", lambda a, b: computed.append(a.shape) or original(a, b))
    doc.paste_tile(MASKED, (16, 32, 48, 64), clean[16:48, 32:64])
    assert computed == [(32, 32, 3)] and not view.diff.pending
    shown = from_qimage(view.canvas._b)
    assert (shown[16:48, 32:64] == lookup_table()[0]).all()  # no difference: the coldest colour
    assert np.array_equal(shown[:16], first[:16])
    doc.set_layer(MASKED, clean * 0.25)  # the run ends: the whole heatmap anew, in the worker
    assert computed == [(32, 32, 3)] and view.diff.pending
    qtbot.waitUntil(lambda: not view.diff.pending, timeout=TIMEOUT)
    assert np.array_equal(from_qimage(view.canvas._b), expected_heat(clean * 0.25, clean))


def test_a_heatmap_the_worker_cannot_compute_is_reported_once(
    qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mdn_gui import workers

    def no_memory(*_args: object) -> float:
        raise MemoryError

    monkeypatch.setattr(workers, "nice_scale", no_memory)
    window.compare.diff.max_gui_pixels = 0
    messages: list[str] = []
    window.statusBar().messageChanged.connect(lambda text: text and messages.append(text))
    window.session_view(mode="diff")
    qtbot.waitUntil(lambda: bool(messages), timeout=TIMEOUT)
    assert messages == [f"Could not compute the difference: {workers.describe_error(MemoryError())}"]
    assert "could not compute" in window.compare.canvas.label_boxes()[0][0]
    assert not window.busy.isVisible()
    window.compare._refresh_images()  # e.g. new metrics: not asked for again
    qtbot.wait(200)
    assert len(messages) == 1 and not window.compare.diff.pending
    assert "diff failed" in capsys.readouterr().err


def test_a_heatmap_does_not_wait_for_a_model_run_to_end(qtbot, window: MainWindow) -> None:
    """Heatmaps have a worker of their own: behind a run of a large photo they waited minutes."""
    session = window.session
    session.set_model(tile=16, passes=64)
    progress: list[int] = []
    session.run_progress.connect(lambda done, total, msg: progress.append(done))
    session.run_now()
    qtbot.waitUntil(lambda: len(progress) >= 2, timeout=TIMEOUT)
    window.compare.diff.max_gui_pixels = 0
    window.session_view(mode="diff")
    qtbot.waitUntil(lambda: not window.compare.diff.pending, timeout=TIMEOUT)
    assert session.running and "computing" not in window.compare.canvas.label_boxes()[0][0]
    session.cancel()


def test_scripted_screenshot_waits_for_noise_and_heatmap_in_the_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mdn_gui import scripted, workers
    from mdn_gui.controllers import noise

    monkeypatch.setattr(opening, "GUI_MAX_PIXELS", 100)
    monkeypatch.setattr(noise, "GUI_NOISE_BUDGET_S", 0.0)  # every noise goes to the worker
    monkeypatch.setattr(diff_image, "GUI_MAX_PIXELS", 0)  # and every heatmap
    seen: list[tuple[bool, bool]] = []
    original = scripted.save_screenshot

    def save(window: MainWindow, path: Path, *, overwrite: bool) -> Path:
        seen.append((window.doc.noisy is not None, window.compare.diff.renderer.pending))
        return original(window, path, overwrite=overwrite)

    monkeypatch.setattr(scripted, "save_screenshot", save)
    slow_noise = workers.apply_noise

    def slow(*args: object, **kwargs: object) -> object:
        time.sleep(1.0)  # longer than the scripted start's own pause
        return slow_noise(*args, **kwargs)

    monkeypatch.setattr(workers, "apply_noise", slow)
    image = photo(tmp_path, "photo.png", (96, 128))
    shot = tmp_path / "shot.png"
    assert main(["--open", str(image), "--noise", "poisson:2.5", "--mode", "diff", "--quit",
                 "--size", "900x600", "--screenshot", str(shot)]) == 0
    assert seen == [(True, False)] and shot.exists()
