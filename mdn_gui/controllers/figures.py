"""The paper's two figures for the loaded weights: the Paper figure and the Features. No widgets.

The Paper figure sweeps the paper's four unseen noises at its levels
(:func:`~model_core.eval.paper.paper_grid`) over centre crops of the current image or of the
built-in sample photos, for every network of the run set and the noisy input. The Features
measure the deep-feature histograms of every network on a centre crop of the current clean
image. Both run on the session's worker, with progress and cancel; their results are kept here
as plain data, and stale generations are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from PySide6.QtCore import QObject, Signal

from mdn_gui.controllers.analysis import AnalysisController
from mdn_gui.figure_jobs import (
    FEATURES,
    PAPER_FIGURE,
    FeaturesDone,
    FeaturesJob,
    PaperFigureDone,
    PaperFigureJob,
    PaperFigurePoint,
)
from mdn_gui.jobs import JobCancelled, JobFailed, JobProgress
from mdn_gui.samples import SAMPLES
from model_core.eval.paper import paper_grid
from model_core.features import DEFAULT_NOISES, FeatureReport, centre_crop

PAPER_CROP = 128
FEATURES_CROP = 192
# The photos among the samples (the chart is synthetic: flat patches and lines, unlike the
# paper's test sets).
SAMPLE_PHOTOS = tuple(name for name in SAMPLES if name != "chart")
SOURCES = ("image", "samples")
KINDS = (PAPER_FIGURE, FEATURES)


@dataclass
class PaperFigureData:
    """What the Paper figure measured so far.

    Attributes:
        points: Series to noise type to [(level, PSNR, SSIM)] by level.
        images: Crops measured (once complete).
        pixels: Clean pixels they hold together (once complete).
        source: What was measured (``this image (name)`` or ``the samples ...``).
        complete: Whether every point is in.
    """

    points: dict[str, dict[str, list[tuple[float, float, float]]]] = field(default_factory=dict)
    images: int = 0
    pixels: int = 0
    source: str = ""
    complete: bool = False


class FiguresController(QObject):
    """Starts the Paper figure and the Features on the session's worker and keeps their results.

    Signals:
        running (kind, running): ``paper-figure`` or ``features`` started or ended.
        progress (kind, done, total, message).
        message (kind, text): why a run could not start, or how it ended.
        paper_changed (): a point of the Paper figure landed, or it was cleared.
        features_changed (): the Features landed, or were cleared.
    """

    running = Signal(str, bool)
    progress = Signal(str, int, int, str)
    message = Signal(str, str)
    paper_changed = Signal()
    features_changed = Signal()

    def __init__(self, analysis: AnalysisController, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.analysis, self.session, self.doc = analysis, analysis.session, analysis.doc
        self.paper_crop, self.features_crop = PAPER_CROP, FEATURES_CROP
        self.source = "image"
        self.group = -1
        self.paper = PaperFigureData()
        self.features: list[FeatureReport] = []
        self.features_shape: tuple[int, int] | None = None
        self._gens: dict[str, int] = {}
        worker = self.session.backend.worker
        worker.paper_point.connect(self._on_point)
        worker.paper_done.connect(self._on_paper_done)
        worker.features_done.connect(self._on_features_done)
        worker.progressed.connect(self._on_progress)
        worker.failed.connect(self._on_failed)
        worker.cancelled.connect(self._on_cancelled)
        self.doc.source_changed.connect(self._source_changed)

    # ------------------------------------------------------------------ starting

    def networks(self) -> list[tuple[object, float]]:
        """(ModelRef, training ratio) of every network of the run set, the baseline first."""
        return [(ref, settings.attn_mask_ratio)
                for ref, settings in reversed(self.analysis.sweep_models(with_classical=False))]

    def crops(self) -> tuple[list[tuple[str, np.ndarray]], str]:
        """The clean crops of the Paper figure and what they are, from :attr:`source`."""
        if self.source == "samples":
            crops = [(name, centre_crop(SAMPLES[name](), self.paper_crop)) for name in SAMPLE_PHOTOS]
            return crops, f"the {len(crops)} sample photos ({', '.join(SAMPLE_PHOTOS)})"
        clean = self.doc.clean
        if clean is None:
            return [], ""
        name = self.doc.source_name or "image"
        return [(name, centre_crop(clean, self.paper_crop))], f"this image ({name})"

    def start_paper(self) -> int | None:
        """Start the Paper figure; returns its generation, or None (the reason is in ``message``)."""
        models = [(ref, s) for ref, s in self.analysis.sweep_models(with_classical=False) if ref.is_network]
        crops, source = self.crops()
        problem = ("The Paper figure needs a network: no weights found." if not models
                   else "The Paper figure needs a clean image." if not crops else "")
        if problem:
            self.message.emit(PAPER_FIGURE, problem)
            return None
        gen = self._issue(PAPER_FIGURE)
        self.paper = PaperFigureData(source=source)
        self.paper_changed.emit()
        job = PaperFigureJob(gen, tuple(models), tuple(crops), tuple(paper_grid()), self.doc.noise.seed,
                             self.doc.model.device)
        self.session.backend.submit(job)
        return gen

    def start_features(self) -> int | None:
        """Start the Features; returns its generation, or None (the reason is in ``message``)."""
        models = [(ref, ratio) for ref, ratio in self.networks() if ref.is_network]
        clean = self.doc.clean
        problem = ("The Features need a network: no weights found." if not models
                   else "The Features need a clean image." if clean is None else "")
        if problem:
            self.message.emit(FEATURES, problem)
            return None
        assert clean is not None
        gen = self._issue(FEATURES)
        self.features, self.features_shape = [], None
        self.features_changed.emit()
        crop = centre_crop(clean, self.features_crop)
        self.session.backend.submit(FeaturesJob(
            gen, tuple(models), crop, DEFAULT_NOISES, self.group, self.doc.noise.seed, self.doc.model.device))
        return gen

    def start(self, kind: str) -> int | None:
        """Start ``paper-figure`` or ``features``."""
        if kind not in KINDS:
            raise ValueError(f"unknown figure {kind!r}")
        return self.start_paper() if kind == PAPER_FIGURE else self.start_features()

    def _issue(self, kind: str) -> int:
        gen = self.session.board.issue(kind)
        self._gens[kind] = gen
        self.running.emit(kind, True)
        return gen

    def cancel(self, kind: str) -> None:
        """Stop a running figure after its current run."""
        if kind in self._gens:
            self.session.board.cancel(kind)
            self._end(kind, "Cancelled.")

    def busy(self, kind: str | None = None) -> bool:
        """Whether ``kind`` (or any figure) is running."""
        return bool(self._gens) if kind is None else kind in self._gens

    def set_settings(self, **changes: object) -> None:
        """Change ``paper_crop``, ``features_crop``, ``source`` or ``group``."""
        for key, value in changes.items():
            if key not in ("paper_crop", "features_crop", "source", "group"):
                raise ValueError(f"unknown figure setting {key!r}")
            if key == "source" and value not in SOURCES:
                raise ValueError(f"source must be one of {SOURCES}, got {value!r}")
            setattr(self, key, value)

    # ------------------------------------------------------------------ results

    def _current(self, kind: str, gen: int) -> bool:
        return self._gens.get(kind) == gen and self.session.board.is_current(kind, gen)

    def _end(self, kind: str, text: str) -> None:
        if self._gens.pop(kind, None) is not None:
            self.running.emit(kind, False)
        self.message.emit(kind, text)

    def _on_point(self, point: PaperFigurePoint) -> None:
        if self._current(PAPER_FIGURE, point.gen):
            series = self.paper.points.setdefault(point.series, {})
            series.setdefault(point.spec.kind, []).append((point.spec.level, point.psnr, point.ssim))
            series[point.spec.kind].sort()
            self.paper_changed.emit()

    def _on_paper_done(self, done: PaperFigureDone) -> None:
        if self._current(PAPER_FIGURE, done.gen):
            self.paper = replace(self.paper, images=done.images, pixels=done.pixels, complete=True)
            self.paper_changed.emit()
            self._end(PAPER_FIGURE, f"Measured {done.pixels:,} pixels per point: {self.paper.source}, "
                                    f"centre crops of {self.paper_crop}x{self.paper_crop} at most.")

    def _on_features_done(self, done: FeaturesDone) -> None:
        if self._current(FEATURES, done.gen):
            self.features, self.features_shape = list(done.reports), done.shape
            self.features_changed.emit()
            h, w = done.shape
            self._end(FEATURES, f"Measured on a {w}x{h} centre crop ({w * h:,} pixels) of this image.")

    def _on_progress(self, event: JobProgress) -> None:
        if event.channel in KINDS and self._current(event.channel, event.gen):
            self.progress.emit(event.channel, event.done, event.total, event.message)

    def _on_failed(self, failed: JobFailed) -> None:
        if failed.channel in KINDS and self._current(failed.channel, failed.gen):
            self._end(failed.channel, f"Failed: {failed.message}")

    def _on_cancelled(self, cancelled: JobCancelled) -> None:
        if cancelled.channel in KINDS and self._current(cancelled.channel, cancelled.gen):
            self._end(cancelled.channel, "Cancelled.")

    def _source_changed(self) -> None:
        """A new image: the Features (and a Paper figure of the image) were of the old one."""
        for kind in KINDS:
            if kind in self._gens and (kind == FEATURES or self.source == "image"):
                self.cancel(kind)
        if self.features:
            self.features, self.features_shape = [], None
            self.features_changed.emit()
        if self.paper.points and self.paper.source.startswith("this image"):
            self.paper = PaperFigureData()
            self.paper_changed.emit()
