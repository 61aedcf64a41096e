"""Background analyses: PSNR sweeps and the attention of a clicked pixel. No widgets.

Sweeps run on a centre crop so that a point costs about a second on a CPU; their points
land in the document one by one, as the worker computes them.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PySide6.QtCore import QObject, Signal

from mdn_gui import catalog as cat
from mdn_gui.controllers.session import SessionController
from mdn_gui.jobs import (
    ATTENTION,
    SWEEP,
    AttentionDone,
    AttentionJob,
    JobCancelled,
    JobFailed,
    JobProgress,
    ModelRef,
    SweepDone,
    SweepJob,
    SweepPoint,
)
from mdn_gui.state import NETWORK_MODELS, NoiseSettings, RunRecord
from model_core.engine import AttentionView
from model_core.noise import NOISE_TYPES

SWEEP_RATIOS = (0.0, 0.15, 0.3, 0.45, 0.6, 0.75, 0.85, 0.95)
SWEEP_CROP = 128


def sweep_levels(kind: str) -> tuple[float, ...]:
    """Noise levels of a level sweep: the paper's levels, one milder and one stronger."""
    info = NOISE_TYPES[kind]
    lo, hi = info.valid_range
    paper = info.paper_levels or (info.default_level,)
    levels = {*paper, min(paper) / 2, max(paper) * 1.5}
    if info.integer:
        levels = {float(round(v)) for v in levels}
    return tuple(sorted(v for v in levels if lo <= v <= hi and v > 0))


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central ``size`` x ``size`` part of an image (all of it when smaller)."""
    h, w = image.shape[:2]
    y0, x0 = max((h - size) // 2, 0), max((w - size) // 2, 0)
    return np.ascontiguousarray(image[y0 : y0 + size, x0 : x0 + size])


class AnalysisController(QObject):
    """Starts sweeps and attention probes on the session's worker.

    Signals:
        sweep_running (kind, running): a sweep started or ended.
        sweep_progress (done, total, message).
        sweep_message (text): why a sweep could not start, or how it ended.
        attention_ready (AttentionView): the attention of the clicked pixel.
        attention_failed (message).
    """

    sweep_running = Signal(str, bool)
    sweep_progress = Signal(int, int, str)
    sweep_message = Signal(str)
    attention_ready = Signal(object)
    attention_failed = Signal(str)

    def __init__(self, session: SessionController, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.doc = session.doc
        self.crop = SWEEP_CROP
        self._sweep: tuple[int, str] | None = None
        self._attention_gen = 0
        worker = session.backend.worker
        worker.sweep_point.connect(self._on_point)
        worker.sweep_done.connect(self._on_done)
        worker.attention_done.connect(self._on_attention)
        worker.failed.connect(self._on_failed)
        worker.cancelled.connect(self._on_cancelled)
        worker.progressed.connect(self._on_progress)
        self._noise_kind = self.doc.noise.kind
        self.doc.source_changed.connect(self._source_changed)
        self.doc.noise_changed.connect(self._noise_changed)

    # ------------------------------------------------------------------ sweeps

    def sweep_models(self, *, with_classical: bool) -> list[tuple[ModelRef, object]]:
        """(model, settings) of every curve: the networks at their training ratio."""
        catalog, base = self.session.catalog, self.session.run_settings()
        base = replace(base, passes=1, tile=0, focus=None, preview=0, input_mask_ratio=0.0)
        chosen = [c for c in ("masked", "baseline") if catalog.available(c)]
        if not chosen and catalog.available("custom"):
            chosen = ["custom"]
        models = [
            (catalog.ref(c), replace(base, attn_mask_ratio=cat.training_ratio(c, catalog.path(c))))
            for c in chosen
        ]
        if with_classical:
            models.append((catalog.ref("nlm"), base))
        return models

    def start_sweep(self, kind: str, xs: tuple[float, ...] | None = None) -> int | None:
        """Start the ``attention`` (PSNR vs mask ratio) or ``noise`` (PSNR vs level) sweep.

        Returns:
            The generation, or None when it cannot start (the reason is in sweep_message).
        """
        if kind not in ("attention", "noise"):
            raise ValueError(f"unknown sweep {kind!r}")
        clean, noisy = self.doc.clean, self.doc.noisy
        models = self.sweep_models(with_classical=kind == "noise")
        problem = (
            "Sweeps need a clean reference image."
            if clean is None or noisy is None
            else "Sweeps need a network: no weights found."
            if not any(m.is_network for m, _ in models)
            else ""
        )
        if problem:
            self.sweep_message.emit(problem)
            return None
        assert clean is not None and noisy is not None
        if kind == "attention":
            models = [(m, s) for m, s in models if m.is_network]
        xs = xs or (SWEEP_RATIOS if kind == "attention" else sweep_levels(self.doc.noise.kind))
        gen = self.session.board.issue(SWEEP)
        self._sweep = (gen, kind)
        self.doc.clear_sweep(kind)
        self.sweep_running.emit(kind, True)
        self.session.backend.submit(
            SweepJob(
                gen,
                kind,
                tuple(xs),
                tuple(models),
                centre_crop(clean, self.crop),
                centre_crop(noisy, self.crop),
                self.doc.noise.kind,
                self.doc.noise.seed,
                self.doc.model.device,
            )
        )
        return gen

    def cancel_sweep(self) -> None:
        """Stop the running sweep after its current point."""
        if self._sweep is not None:
            self.session.board.cancel(SWEEP)
            self._end_sweep("Sweep cancelled.")

    def _source_changed(self) -> None:
        """A new image: the sweeps of the old one would pass for this one's."""
        self.cancel_sweep()
        cleared = [kind for kind in ("attention", "noise") if self.doc.sweeps[kind]]
        for kind in cleared:
            self.doc.clear_sweep(kind)
        if cleared:  # "Sweep finished." above emptied plots read as a sweep that found nothing
            self.sweep_message.emit("A new image: the sweeps of the last one were cleared.")

    def _noise_changed(self, noise: NoiseSettings) -> None:
        """Another noise type: the level sweep's axis is that type's level, its curves were not."""
        if noise.kind == self._noise_kind:
            return
        old, self._noise_kind = self._noise_kind, noise.kind
        if self.sweeping == "noise":
            self.cancel_sweep()
        if self.doc.sweeps["noise"]:
            self.doc.clear_sweep("noise")
            self.sweep_message.emit(
                f"The noise type changed: the level sweep (of {old} noise) was cleared; "
                "the attention-mask sweep keeps the noise in its title."
            )

    @property
    def sweeping(self) -> str | None:
        """Kind of the running sweep, or None."""
        return None if self._sweep is None else self._sweep[1]

    def _end_sweep(self, text: str) -> None:
        if self._sweep is not None:
            kind = self._sweep[1]
            self._sweep = None
            self.sweep_running.emit(kind, False)
        self.sweep_message.emit(text)

    def _on_point(self, point: SweepPoint) -> None:
        if self.session.board.is_current(SWEEP, point.gen):
            x = point.x * 100 if point.kind == "attention" else point.x
            self.doc.add_sweep_point(point.kind, point.series, x, point.y)

    def _on_done(self, done: SweepDone) -> None:
        if self.session.board.is_current(SWEEP, done.gen):
            self._end_sweep("Sweep finished.")

    def _on_progress(self, event: JobProgress) -> None:
        if event.channel == SWEEP and self.session.board.is_current(SWEEP, event.gen):
            self.sweep_progress.emit(event.done, event.total, event.message)

    def _on_failed(self, failed: JobFailed) -> None:
        if not self.session.board.is_current(failed.channel, failed.gen):
            return
        if failed.channel == SWEEP:
            self._end_sweep(f"Sweep failed: {failed.message}")
        elif failed.channel == ATTENTION:
            self.attention_failed.emit(failed.message)

    def _on_cancelled(self, cancelled: JobCancelled) -> None:
        if cancelled.channel == SWEEP and self.session.board.is_current(SWEEP, cancelled.gen):
            self._end_sweep("Sweep cancelled.")

    # ------------------------------------------------------------------ attention

    def attention_model(self) -> str | None:
        """The network whose attention is probed: the selected one, else any available."""
        catalog, choice = self.session.catalog, self.doc.model.model
        if choice in NETWORK_MODELS and catalog.available(choice):
            return choice
        networks = catalog.networks()
        return networks[0] if networks else None

    def probe_attention(
        self, pixel: tuple[int, int], block: int, record: RunRecord | None = None
    ) -> int | None:
        """Compute the attention of ``pixel`` (y, x) in ``block`` in the background.

        Args:
            pixel: (y, x) of the query.
            block: Swin block index.
            record: The run whose keep-maps are shown: its network and ratio are probed, so
                that the block exists (default: the selected network, else any).
        """
        noisy = self.doc.noisy
        settings = replace(self.session.run_settings(), focus=None, probe_blocks=())
        if record is not None and record.weights is not None:
            model = ModelRef(record.model, record.weights, cat.LABELS.get(record.model, record.model))
            settings = replace(settings, attn_mask_ratio=record.attn_ratio)
        else:
            choice = self.attention_model()
            model = None if choice is None else self.session.catalog.ref(choice)
            if choice is not None and choice != self.doc.model.model:
                ratio = cat.training_ratio(choice, self.session.catalog.path(choice))
                settings = replace(settings, attn_mask_ratio=ratio)
        if noisy is None or model is None:
            self.attention_failed.emit("Attention needs an image and a network.")
            return None
        self._attention_gen = self.session.board.issue(ATTENTION)
        self.session.backend.submit(
            AttentionJob(self._attention_gen, model, noisy, pixel, block, settings, self.doc.model.device)
        )
        return self._attention_gen

    def _on_attention(self, done: AttentionDone) -> None:
        if self.session.board.is_current(ATTENTION, done.gen):
            view: AttentionView = done.view
            self.attention_ready.emit(view)
