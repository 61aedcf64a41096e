"""The paper's PSNR-vs-level readings, as data: its masked model and its unmasked baseline.

Read off the paper's figure of PSNR against noise level (both models trained on Gaussian
sigma 15 only; about +/-0.3 dB; ``../shared/reference/NOISE.md``, "The paper's curves, level by
level", is the source and a test checks that these numbers equal its table). The figure gives
PSNR only, no SSIM. Correlated and mixture noise use the paper's own generators, which it does
not publish, so ours are not the same noise there: compare the shapes, not the decibels.
"""

from __future__ import annotations

from dataclasses import dataclass

from model_core.noise import NoiseSpec

__all__ = ["PAPER_KINDS", "PAPER_POINTS", "PaperPoint", "paper_curve", "paper_grid", "paper_point"]

# The four unseen noises of the figure, in its left-to-right order.
PAPER_KINDS = ("correlated", "speckle", "poisson", "mixture")


@dataclass(frozen=True)
class PaperPoint:
    """One level of the paper's figure.

    Attributes:
        noise: Noise type (a :data:`~model_core.noise.NOISE_TYPES` key).
        level: Noise level.
        masked: PSNR (dB) of the paper's masked model ("Ours").
        baseline: PSNR (dB) of its baseline (the same network trained without masks).
    """

    noise: str
    level: float
    masked: float
    baseline: float

    @property
    def spec(self) -> NoiseSpec:
        """The noise as a spec."""
        return NoiseSpec(self.noise, self.level)

    @property
    def lead(self) -> float:
        """Masked minus baseline, in dB."""
        return round(self.masked - self.baseline, 2)


PAPER_POINTS: tuple[PaperPoint, ...] = (
    PaperPoint("correlated", 40, 29.6, 29.3),
    PaperPoint("correlated", 45, 28.85, 27.8),
    PaperPoint("correlated", 50, 28.05, 26.5),
    PaperPoint("correlated", 55, 27.25, 25.45),
    PaperPoint("correlated", 60, 26.5, 24.4),
    PaperPoint("speckle", 0.018, 31.4, 30.65),
    PaperPoint("speckle", 0.024, 30.8, 28.35),
    PaperPoint("speckle", 0.030, 30.2, 26.5),
    PaperPoint("speckle", 0.036, 29.55, 25.15),
    PaperPoint("speckle", 0.040, 29.1, 24.4),
    PaperPoint("poisson", 2, 30.5, 27.7),
    PaperPoint("poisson", 2.5, 28.8, 23.8),
    PaperPoint("poisson", 3, 27.0, 21.3),
    PaperPoint("poisson", 3.5, 25.45, 19.5),
    PaperPoint("mixture", 1, 30.3, 28.2),
    PaperPoint("mixture", 2, 29.6, 26.1),
    PaperPoint("mixture", 3, 28.1, 23.3),
    PaperPoint("mixture", 4, 26.9, 21.4),
    PaperPoint("mixture", 5, 25.9, 20.1),
)


def paper_grid() -> list[NoiseSpec]:
    """The 19 noises of the paper's figure, in its order (correlated, speckle, Poisson, mixture)."""
    return [point.spec for point in PAPER_POINTS]


def paper_curve(kind: str) -> list[PaperPoint]:
    """The paper's points for one noise type, by level (empty for a type the figure lacks)."""
    return sorted((p for p in PAPER_POINTS if p.noise == kind), key=lambda p: p.level)


def paper_point(spec: NoiseSpec) -> PaperPoint | None:
    """The paper's reading at ``spec``, or None where the figure has none."""
    return next((p for p in PAPER_POINTS if p.spec == spec), None)
