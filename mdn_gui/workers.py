"""The one long-lived worker that runs every model, sweep and slow computation.

:class:`Worker` is a QObject created without a parent and moved to a QThread by
:class:`WorkerThread`. Jobs arrive through a queued signal and run one after another in
the worker thread; results leave through signals that carry dataclasses from
:mod:`mdn_gui.jobs` (numpy arrays inside), never widgets. A job whose generation went
stale is skipped, and a running one stops at the next tile (the engine polls ``cancel``).
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

from mdn_gui import classical, memory
from mdn_gui.compose import difference, heatmap, nice_scale, to_uint8
from mdn_gui.figure_jobs import FeaturesJob, PaperFigureJob, features_done, paper_figure_points
from mdn_gui.jobs import (
    AttentionDone,
    AttentionJob,
    DiffDone,
    DiffJob,
    GenerationBoard,
    JobCancelled,
    JobFailed,
    JobProgress,
    JobTile,
    MetricsDone,
    MetricsJob,
    ModelRef,
    NoiseDone,
    NoiseJob,
    OpenDone,
    OpenJob,
    RunDone,
    RunJob,
    SweepDone,
    SweepJob,
    SweepPoint,
    display_of,
    probe_blocks,
)
from mdn_gui.killable import run_killable
from mdn_gui.state import Metrics, RunRecord, as_rgb
from model_core.engine import Cancelled, DenoiseResult, Engine, Progress, TileUpdate
from model_core.metrics import psnr, ssim
from model_core.network.checkpoint import CheckpointError
from model_core.noise import NoiseSpec, apply_noise

ENGINE_CACHE_SIZE = 3
# Classical methods run in a child process, killed on cancel: BM3D takes minutes on a large
# photo and cannot be interrupted in a thread (NLM takes a second: a process would cost more).
KILLABLE = ("bm3d",)


def worker_threads() -> int:
    """Torch threads for the worker: all cores but one, which stays with the GUI.

    On a busy machine an oversubscribed intra-op pool is dramatically slower (a tiny model
    on 2 busy cores ran 25x slower with 2 threads than with 1). ``MDN_GUI_THREADS`` overrides.
    """
    override = os.environ.get("MDN_GUI_THREADS", "")
    if override.isdigit() and int(override) > 0:
        return int(override)
    return max(1, (os.cpu_count() or 2) - 1)


def measure(image: np.ndarray, clean: np.ndarray | None) -> Metrics | None:
    """PSNR and SSIM against the clean image, or None without one."""
    if clean is None or image.shape != clean.shape:
        return None
    quality = ssim(image, clean) if min(image.shape[:2]) >= 11 else None
    return Metrics(psnr(image, clean), quality)


def describe_error(exc: BaseException) -> str:
    """A message for people: what went wrong, without a traceback."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return "Out of memory. Try a smaller tile size or a smaller image."
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:400]


def is_expected(exc: BaseException) -> bool:
    """Whether ``exc`` is bad input or a resource limit (one line says it all), not a bug.

    Covers ``ValueError`` (with the core's ``ImageReadError`` and ``CheckpointError``),
    ``OSError`` and running out of memory on any device.
    """
    return isinstance(exc, ValueError | OSError | MemoryError | torch.OutOfMemoryError)


class Worker(QObject):
    """Runs jobs in its own thread; talks to the GUI through signals only.

    Signals (one argument each, a dataclass from :mod:`mdn_gui.jobs`):
        progressed (JobProgress), tile_ready (JobTile), run_done (RunDone),
        noise_done (NoiseDone), metrics_done (MetricsDone), sweep_point (SweepPoint),
        sweep_done (SweepDone), attention_done (AttentionDone), opened (OpenDone),
        diff_done (DiffDone), failed (JobFailed), cancelled (JobCancelled),
        paper_point (PaperFigurePoint), paper_done (PaperFigureDone), features_done (FeaturesDone).
    """

    progressed = Signal(object)
    tile_ready = Signal(object)
    run_done = Signal(object)
    noise_done = Signal(object)
    metrics_done = Signal(object)
    sweep_point = Signal(object)
    sweep_done = Signal(object)
    attention_done = Signal(object)
    opened = Signal(object)
    diff_done = Signal(object)
    failed = Signal(object)
    cancelled = Signal(object)
    paper_point = Signal(object)
    paper_done = Signal(object)
    features_done = Signal(object)

    def __init__(self, board: GenerationBoard) -> None:
        super().__init__()  # no parent: it is moved to the worker thread
        self._board = board
        self._engines: OrderedDict[tuple[Path, float, str], Engine] = OrderedDict()
        self._handlers: dict[type, Callable[[Any], None]] = {
            RunJob: self._run,
            NoiseJob: self._noise,
            MetricsJob: self._metrics,
            SweepJob: self._sweep,
            AttentionJob: self._attention,
            OpenJob: self._open,
            DiffJob: self._diff,
            PaperFigureJob: self._paper_figure,
            FeaturesJob: self._features,
        }

    @Slot(object)
    def submit(self, job: Any) -> None:
        """Run one job (called through a queued connection, in the worker thread)."""
        if not self._board.is_current(job.channel, job.gen):
            return
        try:
            self._handlers[type(job)](job)
        except Cancelled:
            self.cancelled.emit(JobCancelled(job.channel, job.gen))
        except Exception as exc:  # noqa: BLE001 - any failure must reach the user, not kill the thread
            details = traceback.format_exc()
            message = describe_error(exc)
            if is_expected(exc):
                print(f"mdn-gui: {job.channel} failed: {message}", file=sys.stderr)
            else:  # a bug: the traceback is what a bug report needs
                print(details, file=sys.stderr)
            unloadable = isinstance(exc, CheckpointError)
            self.failed.emit(JobFailed(job.channel, job.gen, message, details, unloadable))

    def _canceller(self, job: Any) -> Callable[[], bool]:
        board, channel, gen = self._board, job.channel, job.gen
        return lambda: not board.is_current(channel, gen)

    def engine(self, path: Path, device: str) -> Engine:
        """A cached engine for a weights file (reloaded when the file changes)."""
        key = (path.resolve(), path.stat().st_mtime if path.exists() else 0.0, device)
        if key in self._engines:
            self._engines.move_to_end(key)
            return self._engines[key]
        engine = Engine.from_file(path, device)
        self._engines[key] = engine
        while len(self._engines) > ENGINE_CACHE_SIZE:
            self._engines.popitem(last=False)
        return engine

    # ------------------------------------------------------------------ handlers

    def _run(self, job: RunJob) -> None:
        cancel = self._canceller(job)
        if job.model.is_network:
            image, record = self._run_network(job, cancel)
        else:
            image, record = self._run_classical(job, cancel)
        metrics = measure(image, job.clean)
        info = f"{job.model.label}, {record.seconds:.1f} s on {record.device}"
        done = RunDone(job.gen, job.layer, job.model, image, record, metrics, info, display_of(image))
        self.run_done.emit(done)

    def _run_network(self, job: RunJob, cancel: Callable[[], bool]) -> tuple[np.ndarray, RunRecord]:
        assert job.model.path is not None
        self.progressed.emit(JobProgress(job.channel, job.gen, 0, 1, f"loading {job.model.label}"))
        engine = self.engine(job.model.path, job.device)
        settings = replace(job.settings, probe_blocks=probe_blocks(job.image, engine.config.num_blocks))
        result: DenoiseResult | None = None
        work = 0  # pixels run through the network, from the last progress report
        for event in engine.run(job.image, settings, cancel=cancel):
            if isinstance(event, Progress):
                work = event.work_total or work
                self.progressed.emit(JobProgress(
                    job.channel, job.gen, event.done, event.total, event.message, event.fraction
                ))
            elif isinstance(event, TileUpdate):
                box = (event.y0, event.x0, event.y1, event.x1)
                self.tile_ready.emit(JobTile(job.gen, job.layer, box, event.image))
            elif isinstance(event, DenoiseResult):
                result = event
        if result is None:
            raise RuntimeError("the engine finished without a result")
        record = RunRecord(
            keep_maps=result.keep_maps,
            input_keep=result.input_keep,
            std=result.std,
            seconds=result.seconds,
            device=result.device,
            model=job.model.choice,
            weights=job.model.path,
            num_blocks=engine.config.num_blocks,
            depths=engine.config.depths,
            attn_ratio=settings.attn_mask_ratio,
            gen=job.gen,
            tile_shape=result.tile_shape,
            tile_count=result.tile_count,
            pixels_per_second=work / result.seconds if result.seconds > 0 else 0.0,
        )
        return result.image, record

    def _run_classical(self, job: RunJob, cancel: Callable[[], bool]) -> tuple[np.ndarray, RunRecord]:
        self.progressed.emit(JobProgress(job.channel, job.gen, 0, 1, f"running {job.model.label}"))
        start = time.perf_counter()
        if cancel():
            raise Cancelled("cancelled before the classical method started")
        args = (job.model.choice, job.image, job.noise, job.clean)
        if job.model.choice in KILLABLE:
            image = run_killable(classical.denoise, args, cancel, Cancelled)
        else:
            image = classical.denoise(*args)
        self.progressed.emit(JobProgress(job.channel, job.gen, 1, 1, "done", 1.0))
        record = RunRecord(
            seconds=time.perf_counter() - start, device="cpu", model=job.model.choice, gen=job.gen
        )
        return image, record

    def _noise(self, job: NoiseJob) -> None:
        start = time.perf_counter()
        image = apply_noise(job.clean, NoiseSpec(job.kind, job.level), job.seed)
        seconds = time.perf_counter() - start
        self.noise_done.emit(NoiseDone(job.gen, image, seconds, display_of(image)))

    def _open(self, job: OpenJob) -> None:
        cancel = self._canceller(job)
        image = as_rgb(memory.read_image_that_fits(job.path).rgb)
        if cancel():  # a newer image or Cancel: skip the conversion for display
            raise Cancelled("superseded while decoding")
        self.opened.emit(OpenDone(job.gen, job.path, job.noisy, image, to_uint8(image)))

    def _diff(self, job: DiffJob) -> None:
        diff = difference(job.after, job.reference)
        if not self._board.is_current(job.channel, job.gen):
            raise Cancelled("superseded while computing the difference")
        vmax = nice_scale(diff)
        self.diff_done.emit(DiffDone(job.gen, heatmap(diff, vmax, job.lut), vmax))

    def _metrics(self, job: MetricsJob) -> None:
        metrics = measure(job.image, job.clean)
        if metrics is not None:
            self.metrics_done.emit(MetricsDone(job.gen, job.key, job.version, metrics))

    def _sweep(self, job: SweepJob) -> None:
        cancel = self._canceller(job)
        total, done = len(job.xs) * len(job.models), 0
        for x in job.xs:
            noisy = job.noisy
            if job.kind == "noise":
                noisy = apply_noise(job.clean, NoiseSpec(job.noise_kind, x), job.seed)
                self.sweep_point.emit(SweepPoint(job.gen, job.kind, "noisy input", x, psnr(noisy, job.clean)))
            for model, settings in job.models:
                if cancel():
                    raise Cancelled("sweep cancelled")
                image = self._sweep_one(job, model, settings, noisy, x, cancel)
                done += 1
                self.sweep_point.emit(SweepPoint(job.gen, job.kind, model.label, x, psnr(image, job.clean)))
                at = f"{x:.0%}" if job.kind == "attention" else f"{x:g}"  # as the plot's axis
                self.progressed.emit(JobProgress(job.channel, job.gen, done, total, f"{model.label} at {at}"))
        self.sweep_done.emit(SweepDone(job.gen, job.kind))

    def _sweep_one(
        self,
        job: SweepJob,
        model: ModelRef,
        settings: Any,
        noisy: np.ndarray,
        x: float,
        cancel: Callable[[], bool],
    ) -> np.ndarray:
        if not model.is_network:
            spec = NoiseSpec(job.noise_kind, x) if job.kind == "noise" else None
            return classical.denoise(model.choice, noisy, spec, job.clean)
        assert model.path is not None
        if job.kind == "attention":
            settings = replace(settings, attn_mask_ratio=float(x))
        return self.engine(model.path, job.device).denoise(noisy, settings, cancel=cancel).image

    def _figure_progress(self, job: Any) -> Callable[[int, int, str], None]:
        def report(done: int, total: int, text: str) -> None:
            self.progressed.emit(JobProgress(job.channel, job.gen, done, total, text))

        return report

    def _paper_figure(self, job: PaperFigureJob) -> None:
        cancel = self._canceller(job)

        def denoise(model: ModelRef, settings: Any, noisy: np.ndarray) -> np.ndarray:
            assert model.path is not None
            return self.engine(model.path, job.device).denoise(noisy, settings, cancel=cancel).image

        done = paper_figure_points(job, denoise, cancel, self.paper_point.emit, self._figure_progress(job))
        self.paper_done.emit(done)

    def _features(self, job: FeaturesJob) -> None:
        def model_of(ref: ModelRef) -> Any:
            assert ref.path is not None
            return self.engine(ref.path, job.device).model

        done = features_done(job, model_of, self._canceller(job), self._figure_progress(job))
        self.features_done.emit(done)

    def _attention(self, job: AttentionJob) -> None:
        assert job.model.path is not None
        engine = self.engine(job.model.path, job.device)
        view = engine.attention_at(job.image, job.pixel, job.block, job.settings)
        if self._board.is_current(job.channel, job.gen):
            self.attention_done.emit(AttentionDone(job.gen, view))


class WorkerThread(QObject):
    """Owns the worker thread: start, submit, and a clean stop on close.

    Signals:
        submit_job (job): queued to :meth:`Worker.submit`.
    """

    submit_job = Signal(object)

    def __init__(
        self, board: GenerationBoard, parent: QObject | None = None, name: str = "mdn-worker"
    ) -> None:
        super().__init__(parent)
        torch.set_num_threads(worker_threads())
        self.worker = Worker(board)
        app = QCoreApplication.instance()
        if app is not None:  # a last guard: never destroy a running thread at exit
            app.aboutToQuit.connect(self.stop)
        self._thread = QThread()
        self._thread.setObjectName(name)
        self.worker.moveToThread(self._thread)
        self.submit_job.connect(self.worker.submit)
        self._thread.start()

    def submit(self, job: Any) -> None:
        """Queue a job; it runs in the worker thread after the jobs before it."""
        self.submit_job.emit(job)

    def is_running(self) -> bool:
        return self._thread.isRunning()

    def stop(self, timeout_ms: int | None = None) -> bool:
        """Quit the thread's event loop and wait for the current job to end (at most
        ``timeout_ms``; None: however long it takes). Returns whether the thread has stopped.

        Callers cancel first (stale generations), so a network run stops at its next tile.
        """
        if not self._thread.isRunning():
            return True
        self._thread.quit()
        return self._thread.wait() if timeout_ms is None else self._thread.wait(timeout_ms)
