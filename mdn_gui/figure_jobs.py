"""The jobs of the Paper figure and Features panels, and the work they do in the worker. No Qt.

The Paper figure measures every model on the paper's 19 noises (correlated, speckle, Poisson,
mixture at the paper's levels) over a set of clean crops, with the noise seeded as ``mdn eval``
seeds it (:func:`~model_core.eval.protocol.noise_seed`), and reports each (series, noise) as
the mean PSNR and SSIM over the crops once every crop has it. The Features panel runs
:func:`~model_core.features.feature_reports` on one clean crop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mdn_gui.jobs import ModelRef
from model_core.engine import Cancelled, RunSettings
from model_core.eval.protocol import noise_seed
from model_core.features import FeatureProgress, FeatureReport, FeaturesCancelled, feature_reports
from model_core.metrics import psnr, ssim, to_uint8_float
from model_core.noise import NoiseSpec, apply_noise

PAPER_FIGURE, FEATURES = "paper-figure", "features"
NOISY_SERIES = "noisy input"


@dataclass(frozen=True, eq=False)
class PaperFigureJob:
    """Every model on every spec of every crop.

    Attributes:
        models: (model, settings) pairs; networks only.
        crops: (name, clean crop) pairs.
        specs: The noises, in the figure's order.
        seed: Base seed of the noise.
    """

    gen: int
    models: tuple[tuple[ModelRef, RunSettings], ...]
    crops: tuple[tuple[str, np.ndarray], ...]
    specs: tuple[NoiseSpec, ...]
    seed: int
    device: str
    channel: str = PAPER_FIGURE


@dataclass(frozen=True, eq=False)
class PaperFigurePoint:
    """Mean PSNR and SSIM of one series at one noise, over ``images`` crops."""

    gen: int
    series: str
    spec: NoiseSpec
    psnr: float
    ssim: float
    images: int


@dataclass(frozen=True, eq=False)
class PaperFigureDone:
    """The figure is complete: ``pixels`` clean pixels per noise and series, in ``images`` crops."""

    gen: int
    images: int
    pixels: int


@dataclass(frozen=True, eq=False)
class FeaturesJob:
    """Feature histograms of ``models`` (model, attention-mask ratio) on one clean crop."""

    gen: int
    models: tuple[tuple[ModelRef, float], ...]
    clean: np.ndarray
    noises: tuple[str, ...]
    group: int
    seed: int
    device: str
    channel: str = FEATURES


@dataclass(frozen=True, eq=False)
class FeaturesDone:
    gen: int
    reports: tuple[FeatureReport, ...]
    shape: tuple[int, int]


Denoiser = Callable[[ModelRef, RunSettings, np.ndarray], np.ndarray]
Progress = Callable[[int, int, str], None]


def _scores(image: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    out = to_uint8_float(image)
    return psnr(out, clean), ssim(out, clean)


def paper_figure_points(job: PaperFigureJob, denoise: Denoiser, cancel: Callable[[], bool],
                        emit: Callable[[PaperFigurePoint], None], progress: Progress) -> PaperFigureDone:
    """Measure the figure, emitting each (series, spec) mean when all crops have it.

    Raises:
        Cancelled: When ``cancel`` returns True (polled before every run).
    """
    total, done = len(job.specs) * len(job.crops) * len(job.models), 0
    for spec in job.specs:
        sums: dict[str, list[float]] = {}
        for name, clean in job.crops:
            clean = to_uint8_float(clean)
            noisy = apply_noise(clean, spec, noise_seed(job.seed, name, spec), quantize=True)
            _add(sums, NOISY_SERIES, _scores(noisy, clean))
            for model, settings in job.models:
                if cancel():
                    raise Cancelled("the paper figure was cancelled")
                _add(sums, model.label, _scores(denoise(model, settings, noisy), clean))
                done += 1
                progress(done, total, f"{model.label} on {spec}")
        for series, (p, s, n) in sums.items():
            emit(PaperFigurePoint(job.gen, series, spec, p / n, s / n, int(n)))
    pixels = sum(c.shape[0] * c.shape[1] for _, c in job.crops)
    return PaperFigureDone(job.gen, len(job.crops), pixels)


def _add(sums: dict[str, list[float]], series: str, scores: tuple[float, float]) -> None:
    acc = sums.setdefault(series, [0.0, 0.0, 0.0])
    acc[0] += scores[0]
    acc[1] += scores[1]
    acc[2] += 1


def features_done(job: FeaturesJob, model_of: Callable[[ModelRef], object], cancel: Callable[[], bool],
                  progress: Progress) -> FeaturesDone:
    """The feature reports of a job (raises ``Cancelled`` when cancelled)."""
    models = [(ref.label, model_of(ref), ratio) for ref, ratio in job.models]

    def report(p: FeatureProgress) -> None:
        progress(p.done, p.total, p.message)

    try:
        reports = feature_reports(models, job.clean, job.noises, group=job.group, seed=job.seed,
                                  progress=report, cancel=cancel)
    except FeaturesCancelled as exc:
        raise Cancelled(str(exc)) from None
    return FeaturesDone(job.gen, tuple(reports), job.clean.shape[:2])
