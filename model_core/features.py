"""Deep-feature distributions under different noises: the paper's interpretability figure.

For one clean image, each noise of a set (default: Gaussian 15, the training noise, and three
unseen ones) is drawn once, the same noisy images go to every model, and the output of one
residual group of each network (default: the last one, what the final LayerNorm and
``conv_after_body`` read) is taken through the model's probe
(:attr:`~model_core.network.swinir.ProbeRequest.feature_groups`). Per model, the values of all
channels and pixels are binned over edges shared by its noises, so its histograms overlay.

**The distance** says in one number how far a model's features move when the noise does:

    D = mean over the unseen noises n of  W1(F_n, F_ref) / std(F_ref)

where F_n is the distribution of the feature values under noise n, F_ref the one under the
training noise (Gaussian 15), W1 the 1-Wasserstein (earth mover's) distance between the two
empirical distributions (the area between their CDFs) and std(F_ref) the standard deviation of
the reference values. Dividing by the reference spread makes D independent of the features'
scale, which differs between models: D = 0 means the unseen noises leave the distribution as
the training noise does; D = 1 means they move it, on average, by one reference std. The
distances are computed on a fixed random subset of the values (the same pixels and channels for
every noise; all of them when there are fewer than ``max_values``), the histograms on all values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model_core.noise import NoiseSpec, apply_noise

__all__ = [
    "DEFAULT_NOISES",
    "REFERENCE_NOISE",
    "FeatureProgress",
    "FeatureReport",
    "FeaturesCancelled",
    "centre_crop",
    "deep_features",
    "feature_distance",
    "feature_reports",
    "histograms",
    "shared_edges",
    "subsample",
    "wasserstein1",
]

REFERENCE_NOISE = "gaussian:15"
DEFAULT_NOISES = ("gaussian:15", "speckle:0.024", "mixture:2", "poisson:2.5")
DEFAULT_BINS = 120
DEFAULT_MAX_VALUES = 200_000
# Share of the pooled values left outside the edges at each end: a few extreme values would
# otherwise stretch the axis until the histograms are spikes.
TAIL = 0.002


class FeaturesCancelled(Exception):
    """Raised by :func:`feature_reports` when its ``cancel`` callback returns True."""


@dataclass(frozen=True)
class FeatureProgress:
    """One (model, noise) forward pass done."""

    done: int
    total: int
    message: str


@dataclass
class FeatureReport:
    """The feature distributions of one model.

    Attributes:
        label: The model's name.
        group: Residual group whose output was taken (0-based).
        attn_mask_ratio: The attention-mask ratio the model ran with.
        edges: Shared bin edges (bins + 1).
        histograms: Noise (``TYPE:LEVEL``) to densities per bin (they integrate to the share
            of values inside the edges).
        distances: Unseen noise to W1(noise, reference) / std(reference).
        distance: Their mean (see the module docstring); NaN without an unseen noise.
        reference: The noise the distances are measured from.
        reference_std: The std of the reference values.
        values: Feature values per noise (channels x pixels).
    """

    label: str
    group: int
    attn_mask_ratio: float
    edges: list[float]
    histograms: dict[str, list[float]]
    distances: dict[str, float]
    distance: float
    reference: str
    reference_std: float
    values: int
    means: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dictionary (NaN as None)."""
        return {
            "label": self.label, "group": self.group, "attn_mask_ratio": self.attn_mask_ratio,
            "reference": self.reference, "reference_std": self.reference_std,
            "distance": _finite(self.distance), "distances": self.distances,
            "values": self.values, "means": self.means, "edges": self.edges,
            "histograms": self.histograms,
        }


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None


def deep_features(model: Any, image: np.ndarray, group: int = -1, attn_mask_ratio: float = 0.0,
                  seed: int = 0) -> np.ndarray:
    """The output features of one residual group for an image, from one forward pass.

    Args:
        model: A :class:`~model_core.network.swinir.MaskedSwinIR` (on any device).
        image: float32 HWC RGB in [0, 1]; run whole, without tiles.
        group: Residual group index; negative counts from the end (-1: the last group).
        attn_mask_ratio: Attention mask of the pass (a masked model's training ratio).
        seed: Seed of the keep-maps.

    Returns:
        float32 (C, H, W).
    """
    import torch

    from model_core.network.swinir import ProbeRequest

    count = len(model.cfg.depths)
    if isinstance(group, bool) or not isinstance(group, int) or not -count <= group < count:
        raise ValueError(f"group must be in {-count}..{count - 1} for a {count}-group model, got {group!r}")
    index = group % count
    device = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(image, np.float32)).permute(2, 0, 1)[None].to(device)
    generator = torch.Generator(device).manual_seed(int(seed))
    with torch.inference_mode():
        _, found = model(x, attn_mask_ratio, generator, probe=ProbeRequest(feature_groups=(index,)))
    return found.features[index][0].float().cpu().numpy()


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central ``size`` x ``size`` part of an image (all of a side that is shorter)."""
    h, w = image.shape[:2]
    y0, x0 = max((h - size) // 2, 0), max((w - size) // 2, 0)
    return np.ascontiguousarray(image[y0 : y0 + size, x0 : x0 + size])


def subsample(values: np.ndarray, max_values: int, seed: int = 0) -> np.ndarray:
    """``values`` flattened, or ``max_values`` of them at seeded random positions.

    The positions depend only on the size and the seed, so arrays of one shape (the features of
    one model under different noises) are sampled at the same channels and pixels.
    """
    flat = np.asarray(values, np.float32).ravel()
    if flat.size <= max_values:
        return flat
    index = np.random.default_rng(seed).choice(flat.size, max_values, replace=False)
    return flat[np.sort(index)]


def wasserstein1(a: np.ndarray, b: np.ndarray) -> float:
    """The 1-Wasserstein distance between the empirical distributions of two samples.

    The area between their CDFs, exactly: both step functions are evaluated between every pair
    of consecutive values of the pooled sample.
    """
    a = np.sort(np.asarray(a, np.float64).ravel())
    b = np.sort(np.asarray(b, np.float64).ravel())
    if a.size == 0 or b.size == 0:
        raise ValueError("the 1-Wasserstein distance needs two non-empty samples")
    pooled = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(a, pooled[:-1], side="right") / a.size
    cdf_b = np.searchsorted(b, pooled[:-1], side="right") / b.size
    return float(np.sum(np.abs(cdf_a - cdf_b) * np.diff(pooled)))


def feature_distance(samples: dict[str, np.ndarray], reference: str = REFERENCE_NOISE
                     ) -> tuple[float, dict[str, float]]:
    """D = mean over the non-reference samples of W1(sample, reference) / std(reference).

    Returns:
        (D, noise -> its own W1 / std); D is NaN when there is no other sample.

    Raises:
        KeyError: If ``reference`` is not among the samples.
        ValueError: If the reference values are all equal (no spread to measure by).
    """
    ref = np.asarray(samples[reference], np.float64)
    spread = float(ref.std())
    if not spread > 0:
        raise ValueError(f"the features under {reference} have no spread (std {spread})")
    each = {name: wasserstein1(values, ref) / spread for name, values in samples.items()
            if name != reference}
    return (float(np.mean(list(each.values()))) if each else float("nan")), each


def shared_edges(arrays: Sequence[np.ndarray], bins: int = DEFAULT_BINS, tail: float = TAIL) -> np.ndarray:
    """``bins + 1`` edges over the pooled values, from the ``tail`` to the ``1 - tail`` quantile."""
    pooled = np.concatenate([np.asarray(a, np.float32).ravel() for a in arrays])
    lo, hi = (float(v) for v in np.quantile(pooled, (tail, 1 - tail)))
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1)


def histograms(arrays: dict[str, np.ndarray], edges: np.ndarray) -> dict[str, list[float]]:
    """Densities of each array over ``edges``, as a share of all its values per unit of value."""
    widths = np.diff(edges)
    return {name: (np.histogram(values, edges)[0] / max(values.size, 1) / widths).tolist()
            for name, values in arrays.items()}


def feature_reports(
    models: Sequence[tuple[str, Any, float]],
    clean: np.ndarray,
    noises: Sequence[str] = DEFAULT_NOISES,
    *,
    group: int = -1,
    seed: int = 0,
    bins: int = DEFAULT_BINS,
    max_values: int = DEFAULT_MAX_VALUES,
    progress: Callable[[FeatureProgress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> list[FeatureReport]:
    """Feature histograms and distances of every model under every noise of one clean image.

    Args:
        models: (label, MaskedSwinIR, attention-mask ratio) per model.
        clean: Clean float32 HWC RGB image in [0, 1].
        noises: ``TYPE:LEVEL`` texts; must include :data:`REFERENCE_NOISE` for the distances.
        group: Residual group (negative from the end).
        seed: Seed of the noise (one noisy image per noise, shared by the models) and the masks.
        bins: Histogram bins.
        max_values: Values per noise the distances use (see :func:`subsample`).
        progress: Called after each forward pass.
        cancel: Polled before each pass; True raises :class:`FeaturesCancelled`.
    """
    specs = [str(NoiseSpec.parse(n)) for n in noises]
    if len(set(specs)) != len(specs):
        raise ValueError(f"a noise is given twice: {', '.join(specs)}")
    if REFERENCE_NOISE not in specs:
        raise ValueError(f"the distances are measured from {REFERENCE_NOISE}: include it in the noises")
    noisy = {s: apply_noise(clean, s, seed, quantize=True) for s in specs}
    total, done, reports = len(models) * len(specs), 0, []
    for label, model, ratio in models:
        feats: dict[str, np.ndarray] = {}
        for spec in specs:
            if cancel is not None and cancel():
                raise FeaturesCancelled(f"cancelled before {label} on {spec}")
            feats[spec] = deep_features(model, noisy[spec], group, ratio, seed)
            done += 1
            if progress is not None:
                progress(FeatureProgress(done, total, f"{label} on {spec}"))
        reports.append(_report(label, model, ratio, feats, group, seed, bins, max_values))
    return reports


def _report(label: str, model: Any, ratio: float, feats: dict[str, np.ndarray], group: int,
            seed: int, bins: int, max_values: int) -> FeatureReport:
    samples = {s: subsample(f, max_values, seed) for s, f in feats.items()}
    distance, each = feature_distance(samples)
    edges = shared_edges(list(samples.values()), bins)
    return FeatureReport(
        label=label, group=group % len(model.cfg.depths), attn_mask_ratio=float(ratio),
        edges=edges.tolist(), histograms=histograms(feats, edges), distances=each,
        distance=distance, reference=REFERENCE_NOISE,
        reference_std=float(np.std(samples[REFERENCE_NOISE])),
        values=int(next(iter(feats.values())).size),
        means={s: float(f.mean()) for s, f in feats.items()})
