"""The session controller: opens images, applies noise, runs denoisers. No widgets.

It is the only writer of the :class:`~mdn_gui.state.Document`. Model work goes to the
single :class:`~mdn_gui.workers.Worker`; every job gets a fresh generation and results
of stale generations are dropped here, so a late answer can never overwrite a newer one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from mdn_gui import catalog as cat
from mdn_gui import memory
from mdn_gui.controllers.noise import NoisePreview
from mdn_gui.controllers.opening import ImageOpener
from mdn_gui.controllers.progress import RunClock
from mdn_gui.jobs import (
    NOISE,
    OPEN_RESULT,
    GenerationBoard,
    JobCancelled,
    JobFailed,
    JobProgress,
    JobTile,
    MetricsDone,
    MetricsJob,
    RunDone,
    RunJob,
    engine_settings,
    metrics_channel,
    preview_side,
    run_channel,
)
from mdn_gui.samples import load_sample
from mdn_gui.state import (
    CLEAN,
    MODEL_LAYERS,
    NETWORK_MODELS,
    NOISY,
    Document,
    ModelSettings,
)
from mdn_gui.workers import WorkerThread
from model_core.engine import RunSettings
from model_core.noise import NOISE_TYPES, NoiseSpec

MAX_RATIO = 0.95
RESULT_LAYERS = tuple(dict.fromkeys(MODEL_LAYERS.values()))


class SessionController(QObject):
    """Everything a session does, callable from views, tests and the command line.

    Signals:
        run_progress (done, total, message): progress of the newest active run.
        running_changed (running): whether any run is in flight.
        run_finished (layer): a current run's result landed in the document.
        run_failed (message): a run could not start or failed.
        message (text): something worth showing in the status bar.
        image_opened (path, noisy): an image file became the source (at once or from the worker).
        open_failed (path, message): an image decoded in the worker could not be read.
    """

    run_progress = Signal(int, int, str)
    running_changed = Signal(bool)
    run_finished = Signal(str)
    run_failed = Signal(str)
    message = Signal(str)
    image_opened = Signal(str, bool)
    open_failed = Signal(str, str)

    def __init__(
        self,
        document: Document | None = None,
        catalog: cat.ModelCatalog | None = None,
        *,
        debounce_ms: int = 300,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.doc = document or Document()
        self.catalog = catalog if catalog is not None else cat.ModelCatalog.discover()
        self.board = GenerationBoard()
        self.backend = WorkerThread(self.board, self)
        # Decoding and heatmaps of large images have a worker of their own: behind a model
        # run (minutes on a large photo) they would wait for it to end.
        self.image_backend = WorkerThread(self.board, self, name="mdn-images")
        self.auto_run = True
        # Where the user looks, as (y, x): tiles there are denoised (and painted) first.
        self.focus_provider: Callable[[], tuple[int, int] | None] = lambda: None
        # (model choice, device) to the pixels per second its last run measured: sizes the preview.
        self._speeds: dict[tuple[str, str], float] = {}
        self._active: dict[str, int] = {}
        # Time so far and time left of the run under way (the worker runs one at a time).
        self.run_clock = RunClock()
        # Runs asked for while the noisy image is computed: (choice, attn_ratio), started on arrival.
        self._deferred: list[tuple[str | None, float | None]] = []
        self.noise_preview = NoisePreview(self.board, self.backend, self._set_noisy, parent=self)
        self.noise_preview.failed.connect(self._noise_failed)
        self.opener = ImageOpener(self.board, self.image_backend, self._image_read, parent=self)
        self.result_opener = ImageOpener(
            self.board, self.image_backend, self._result_read, channel=OPEN_RESULT, parent=self
        )
        self.opener.failed.connect(self._open_failed)
        self.result_opener.failed.connect(self.open_failed)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(debounce_ms)
        self._debounce.timeout.connect(self._scheduled_run)
        worker = self.backend.worker
        worker.progressed.connect(self._on_progress)
        worker.tile_ready.connect(self._on_tile)
        worker.run_done.connect(self._on_run_done)
        worker.metrics_done.connect(self._on_metrics_done)
        worker.failed.connect(self._on_failed)
        worker.cancelled.connect(self._on_cancelled)
        if self.catalog.masked is None and self.catalog.custom is None:
            self.doc.update_model(model="baseline" if self.catalog.baseline else "nlm", attn_ratio=0.0)

    # ------------------------------------------------------------------ opening images

    def open_sample(self, name: str) -> None:
        """Open a built-in sample as the clean image."""
        self.load_array(name, load_sample(name))

    def open_image(self, path: str | Path, *, noisy: bool = False) -> bool:
        """Open an image file as the clean image, or as a real noisy photo without reference.

        Returns:
            True when it was opened at once; False when it is large and decoded in the worker
            (``image_opened`` or ``open_failed`` follows; runs asked for meanwhile wait for it).

        Raises:
            ImageReadError: If the file cannot be read or needs more memory than is available
                (for a large file, errors found while decoding come as ``open_failed``).
        """
        self._drop_deferred()  # runs asked for until now were for the old image
        return self.opener.request(path, noisy)

    def _open_failed(self, path: str, message: str) -> None:
        self._drop_deferred()  # they waited for this image (the old one is still shown)
        self.open_failed.emit(path, message)

    def _image_read(self, path: Path, noisy: bool, image: np.ndarray, display: np.ndarray | None) -> None:
        # Runs asked for while it was decoded wait on (for its noise) and run on it.
        self.load_array(path.name, image, noisy=noisy, path=path, display=display, keep_deferred=True)
        self.image_opened.emit(str(path), noisy)

    def load_array(
        self,
        name: str,
        image: np.ndarray,
        *,
        noisy: bool = False,
        path: Path | None = None,
        display: np.ndarray | None = None,
        keep_deferred: bool = False,
    ) -> None:
        """Make ``image`` the session's source (``display``: its uint8 pixels, when converted)."""
        if keep_deferred:
            self.cancel_runs()
        else:
            self.cancel()
        self.noise_preview.cancel()  # the old image's noise must not land on the new one
        self.result_opener.cancel()  # nor a result of the old image's size
        self.doc.set_source(name, image, noisy=noisy, path=path, display=display)
        if noisy:
            self._noisy_changed()
        else:
            self.refresh_noise()

    def open_result(self, path: str | Path) -> str:
        """Open an image file as an extra result layer, shown as B; returns its key.

        A large file is decoded in the worker: its layer comes later (errors as ``open_failed``).

        Raises:
            ImageReadError: If a small file cannot be read.
            ValueError: If its size differs from the source image.
        """
        path = Path(path)
        header = memory.header_size(path)
        if header is not None:
            self._check_result_size(path, (header[1], header[0]))
        self.result_opener.request(path)
        return f"opened:{path.name}"

    def _check_result_size(self, path: Path, shape: tuple[int, int]) -> None:
        size = self.doc.image_size
        if size is not None and shape != size:
            raise ValueError(f"{path.name} is {shape[1]}x{shape[0]}, the image is {size[1]}x{size[0]}")

    def _result_read(self, path: Path, _noisy: bool, image: np.ndarray, display: np.ndarray | None) -> None:
        try:  # the header said the right size; the image may still differ (a slot must not raise)
            self._check_result_size(path, image.shape[:2])
        except ValueError as exc:
            self.open_failed.emit(str(path), str(exc))
            return
        key = f"opened:{path.name}"
        self.doc.set_layer(key, image, label=path.stem, info=f"opened from {path}", display=display)
        self.request_metrics(key)
        self.doc.update_view(b=key)

    # ------------------------------------------------------------------ noise

    def set_noise(self, **changes: Any) -> None:
        """Change the noise (``kind``, ``level``, ``seed``); a new type gets its default level."""
        if "kind" in changes and "level" not in changes and changes["kind"] != self.doc.noise.kind:
            changes["level"] = NOISE_TYPES[changes["kind"]].default_level
        if changes.get("kind", self.doc.noise.kind) not in NOISE_TYPES:
            raise ValueError(f"unknown noise type {changes['kind']!r}")
        spec = NoiseSpec(changes.get("kind", self.doc.noise.kind), changes.get("level", self.doc.noise.level))
        changes.update(kind=spec.kind, level=spec.level)
        if self.doc.update_noise(**changes):
            self.refresh_noise()

    def refresh_noise(self) -> None:
        """Recompute the noisy image (slow noise goes to the worker; runs wait for it)."""
        clean = self.doc.clean
        if clean is not None and not self.noise_preview.request(clean, self.doc.noise):
            self.cancel_runs()

    def noise_spec(self) -> NoiseSpec | None:
        """The synthetic noise of the noisy layer (None for a real noisy photo)."""
        if not self.doc.has_clean:
            return None
        return NoiseSpec(self.doc.noise.kind, self.doc.noise.level)

    def _set_noisy(self, noisy: np.ndarray, display: np.ndarray | None = None) -> None:
        spec = NoiseSpec(self.doc.noise.kind, self.doc.noise.level)
        info = f"{spec}, seed {self.doc.noise.seed}"
        self.doc.set_layer(NOISY, noisy, label=f"noisy ({spec})", info=info, display=display)
        self._noisy_changed()

    def _noisy_changed(self) -> None:
        """The input of every model changed: old results are stale."""
        self.cancel_runs()
        for key in RESULT_LAYERS:
            self.doc.remove_layer(key)
        self.request_metrics(NOISY)
        for key in self.doc.result_keys():
            self.request_metrics(key)
        deferred, self._deferred = self._deferred, []
        for choice, ratio in deferred:
            self.run_now(choice, attn_ratio=ratio)
        if deferred and not self._active:  # none of them could start
            self.running_changed.emit(False)
        if self.auto_run and not deferred:
            self.schedule_run()

    def request_metrics(self, key: str) -> None:
        """Compute PSNR/SSIM of a layer against the clean image in the worker."""
        layer, clean = self.doc.layers.get(key), self.doc.clean
        if layer is None or clean is None or key == CLEAN or layer.image.shape != clean.shape:
            return
        gen = self.board.issue(metrics_channel(key))
        self.backend.submit(MetricsJob(gen, key, layer.version, layer.image, clean))

    def _on_metrics_done(self, done: MetricsDone) -> None:
        if self.board.is_current(metrics_channel(done.key), done.gen):
            self.doc.set_metrics(done.key, done.version, done.metrics)

    # ------------------------------------------------------------------ models

    def set_model(self, **changes: Any) -> None:
        """Change the model settings; a different model starts at its training ratio."""
        for name in ("attn_ratio", "input_ratio"):
            if name in changes and not 0.0 <= changes[name] <= MAX_RATIO:
                raise ValueError(f"{name} must be in [0, {MAX_RATIO}], got {changes[name]}")
        choice = changes.get("model", self.doc.model.model)
        switched = choice != self.doc.model.model
        if switched and "attn_ratio" not in changes and choice in NETWORK_MODELS:
            changes["attn_ratio"] = cat.training_ratio(choice, self.catalog.path(choice))
        changed = self.doc.update_model(**changes)
        if switched:
            self.show_result_of(choice)
        if changed and self.auto_run:
            self.schedule_run()

    def show_result_of(self, choice: str) -> None:
        """Show the layer of a model as B (its output is what the user wants to see)."""
        self.doc.update_view(b=MODEL_LAYERS[choice])

    def open_weights(self, path: str | Path) -> None:
        """Use a weights file as the ``custom`` model and select it.

        Raises:
            FileNotFoundError: If the file does not exist (loading errors come from the worker).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such weights file")
        self.catalog.custom = path
        ratio = cat.training_ratio("custom", path)
        changed = self.doc.update_model(model="custom", weights=path, attn_ratio=ratio)
        if not changed:
            self.doc.model_changed.emit(self.doc.model)  # same file reopened: views re-read
        self.show_result_of("custom")
        if self.auto_run:
            self.schedule_run()

    def run_settings(self, model: ModelSettings | None = None) -> RunSettings:
        """Engine settings from the model settings, with a preview sized to the model's measured
        speed on its device (:func:`~mdn_gui.jobs.preview_side`)."""
        model = model or self.doc.model
        rate = self._speeds.get((model.model, model.device))
        return engine_settings(model, self.focus_provider(), preview_side(rate, model.device))

    # ------------------------------------------------------------------ runs

    def schedule_run(self) -> None:
        """Cancel what runs now and start a new run once the settings rest (debounced)."""
        self.cancel_runs()
        self._debounce.start()

    def _scheduled_run(self) -> None:
        if self.catalog.available(self.doc.model.model):
            self.run_now()

    def run_now(self, choice: str | None = None, *, attn_ratio: float | None = None) -> int | None:
        """Start a run now; returns its generation, or None when it cannot start.

        While the noisy image is being computed the run waits (None) and starts when it lands.

        Args:
            choice: Model to run (default: the selected one).
            attn_ratio: Override of the attention-mask ratio (default: the settings').
        """
        self._debounce.stop()
        if self.noise_preview.pending or self.opener.pending:  # the input is about to change
            if (choice, attn_ratio) not in self._deferred:
                self._deferred.append((choice, attn_ratio))
            self.running_changed.emit(True)  # a waiting run can be cancelled
            self.message.emit("The run starts when the noisy image is ready.")
            return None
        choice = choice or self.doc.model.model
        noisy = self.doc.noisy
        if noisy is None:
            self.run_failed.emit("Open an image first.")
            return None
        try:
            ref = self.catalog.ref(choice)
        except ValueError as exc:
            self.run_failed.emit(str(exc))
            return None
        model = self.doc.model if attn_ratio is None else replace(self.doc.model, attn_ratio=attn_ratio)
        layer = MODEL_LAYERS[choice]
        gen = self.board.issue(run_channel(layer))
        label = ref.label if choice != "custom" else f"{ref.label} (weights)"
        display = self.doc.layers[NOISY].display
        self.doc.set_layer(layer, noisy.copy(), label=label, info="running", partial=True, display=display)
        self._active[run_channel(layer)] = gen
        if self.doc.view.b not in self.doc.layers or self.doc.view.b == self.doc.view.a:
            self.doc.update_view(b=layer)
        self.running_changed.emit(True)
        self.backend.submit(
            RunJob(
                gen,
                layer,
                ref,
                noisy,
                self.doc.clean,
                self.run_settings(model),
                model.device,
                self.noise_spec(),
            )
        )
        return gen

    def run_all(self) -> list[int]:
        """Run every available denoiser, each network at the ratio it was trained with."""
        gens = []
        for choice in ("masked", "baseline", "custom", "nlm"):
            if self.catalog.available(choice):
                ratio = (
                    cat.training_ratio(choice, self.catalog.path(choice))
                    if choice in NETWORK_MODELS
                    else None
                )
                gen = self.run_now(choice, attn_ratio=ratio)
                if gen is not None:
                    gens.append(gen)
        return gens

    def cancel_runs(self) -> None:
        """Make every in-flight run stale (it stops at its next tile)."""
        self._debounce.stop()
        self.board.cancel_matching("run:")
        for channel in list(self._active):
            self._finish(channel, remove_partial=True)

    def cancel(self) -> None:
        """The Cancel button: stop runs, an image being decoded, and runs waiting for the input.

        Noise being computed still lands: the panel already shows its settings, and the
        models need an input that matches them.
        """
        self._drop_deferred()
        self.opener.cancel()
        self.cancel_runs()

    def _drop_deferred(self) -> None:
        """Forget the runs waiting for the input."""
        if self._deferred:
            self._deferred.clear()
            if not self._active:
                self.running_changed.emit(False)

    @property
    def running(self) -> bool:
        """Whether a run is in flight or waits for its input."""
        return bool(self._active or self._deferred)

    def _current(self, layer: str, gen: int) -> bool:
        return self.board.is_current(run_channel(layer), gen)

    def _finish(self, channel: str, *, remove_partial: bool) -> None:
        self._active.pop(channel, None)
        layer = self.doc.layers.get(channel.removeprefix("run:"))
        if remove_partial and layer is not None and layer.partial:
            self.doc.remove_layer(layer.key)
        if not self._active and not self._deferred:
            self.run_clock.stop()
            self.running_changed.emit(False)

    def _on_progress(self, event: JobProgress) -> None:
        if event.channel.startswith("run:") and self.board.is_current(event.channel, event.gen):
            self.run_clock.update((event.channel, event.gen), event.fraction, event.message)
            self.run_progress.emit(event.done, event.total, event.message)

    def _on_tile(self, tile: JobTile) -> None:
        if self._current(tile.layer, tile.gen):
            self.doc.paste_tile(tile.layer, tile.box, tile.image)

    def _on_run_done(self, done: RunDone) -> None:
        if not self._current(done.layer, done.gen):
            return  # a stale run: its settings or input changed while it ran
        layer = self.doc.set_layer(done.layer, done.image, info=done.info, display=done.display)
        if done.metrics is not None:
            self.doc.set_metrics(done.layer, layer.version, done.metrics)
        self.doc.set_record(done.layer, done.record)
        if done.record.pixels_per_second > 0:
            self._speeds[(done.record.model, self.doc.model.device)] = done.record.pixels_per_second
        self._finish(run_channel(done.layer), remove_partial=False)
        self.message.emit(f"{done.info}")
        self.run_finished.emit(done.layer)

    def _on_failed(self, failed: JobFailed) -> None:
        if not self.board.is_current(failed.channel, failed.gen):
            return
        if failed.channel.startswith("run:"):
            self._finish(failed.channel, remove_partial=True)
            self.run_failed.emit(failed.message)
        elif not failed.channel.startswith(("sweep", "attention", "open", NOISE)):  # their owners'
            self.message.emit(f"Error: {failed.message}")

    def _noise_failed(self, message: str) -> None:
        self.message.emit(f"Error: {message}")
        if self._deferred:  # the runs waiting for this noisy image cannot start
            self._drop_deferred()
            self.run_failed.emit(f"no noisy image: {message}")

    def _on_cancelled(self, cancelled: JobCancelled) -> None:
        if cancelled.channel.startswith("run:") and not self._active:
            self.message.emit("Run cancelled.")

    # ------------------------------------------------------------------ shutdown

    def shutdown(self, timeout_ms: int | None = None) -> bool:
        """Cancel everything and stop the worker threads: wait for the current tile or decoding,
        at most ``timeout_ms`` for each thread (None: however long it takes).

        Returns:
            Whether both threads have stopped (False: one still computes; it must not be
            destroyed while it runs).
        """
        self._debounce.stop()
        self.board.cancel_matching("")
        self._active.clear()
        stopped = self.backend.stop(timeout_ms)
        return self.image_backend.stop(timeout_ms) and stopped
