"""Pixel arithmetic of the comparison view, without Qt: differences, heatmaps, exports."""

from __future__ import annotations

import math

import numpy as np


def difference(after: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Mean absolute difference over the channels.

    Args:
        after: float32 (H, W, 3).
        reference: float32 (H, W, 3) of the same size.

    Returns:
        float32 (H, W) in [0, 1].
    """
    if after.shape != reference.shape:
        raise ValueError(f"cannot compare images of shapes {after.shape} and {reference.shape}")
    return np.mean(np.abs(after - reference), axis=2, dtype=np.float32)


def nice_scale(diff: np.ndarray, percentile: float = 99.5, floor: float = 2 / 255) -> float:
    """Upper end of a heatmap scale: a round number just above the ``percentile`` value."""
    top = max(float(np.percentile(diff, percentile)) if diff.size else 0.0, floor)
    levels = top * 255.0  # round on the familiar 8-bit scale
    magnitude = 10 ** math.floor(math.log10(levels))
    for step in (1, 2, 2.5, 5, 10):
        if levels <= step * magnitude:
            return step * magnitude / 255.0
    return levels / 255.0


def heatmap(values: np.ndarray, vmax: float, lut: np.ndarray) -> np.ndarray:
    """Map (H, W) values in [0, vmax] through a (N, 3) uint8 lookup table.

    Returns:
        uint8 (H, W, 3).
    """
    if vmax <= 0:
        raise ValueError(f"the heatmap scale must be positive, got {vmax}")
    index = np.clip(values / vmax, 0.0, 1.0) * (len(lut) - 1)
    return lut[np.round(index).astype(np.intp)]


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float [0, 1] to uint8, rounding; uint8 input is returned unchanged."""
    if image.dtype == np.uint8:
        return image
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def overlay_mask(
    image: np.ndarray,
    keep: np.ndarray,
    colour: tuple[float, float, float] = (1.0, 0.1, 0.1),
    strength: float = 0.6,
) -> np.ndarray:
    """Tint the dropped positions (``keep == 0``) of an image, for mask visualisations.

    Args:
        image: float32 (H, W, 3).
        keep: (H, W) 0/1 map; may be smaller than the image (it covers its top-left part).
        colour: RGB of the tint.
        strength: 0 (no tint) to 1 (solid colour).

    Returns:
        float32 (H, W, 3).
    """
    out = image.copy()
    h, w = min(keep.shape[0], image.shape[0]), min(keep.shape[1], image.shape[1])
    dropped = keep[:h, :w] == 0
    tint = np.asarray(colour, np.float32)
    region = out[:h, :w]
    region[dropped] = (1 - strength) * region[dropped] + strength * tint
    return out


def compose_export(
    mode: str, a: np.ndarray, b: np.ndarray, split_column: int = 0, separator: int = 4
) -> np.ndarray:
    """The comparison at full resolution, as an image file would hold it.

    Args:
        mode: ``split`` (A left of ``split_column``, B right of it, with a white line),
            ``side`` (A and B next to each other), ``toggle`` or ``diff`` (``b`` alone:
            the shown image or the heatmap).
        a: (H, W, 3) float32 or uint8.
        b: (H, W, 3) float32 or uint8, same size as ``a``.
        split_column: Image column of the divider in split mode.
        separator: Gap between the two images in side mode.

    Returns:
        uint8 (H, W', 3).
    """
    a8, b8 = to_uint8(a), to_uint8(b)
    if mode in ("toggle", "diff"):
        return b8.copy()
    if a8.shape != b8.shape:
        raise ValueError(f"A and B differ in size: {a8.shape} and {b8.shape}")
    if mode == "side":
        gap = np.full((a8.shape[0], separator, 3), 255, np.uint8)
        return np.concatenate([a8, gap, b8], axis=1)
    if mode != "split":
        raise ValueError(f"unknown comparison mode {mode!r}")
    column = int(np.clip(split_column, 0, a8.shape[1]))
    out = b8.copy()
    out[:, :column] = a8[:, :column]
    if 0 < column < out.shape[1]:
        out[:, max(column - 1, 0) : column + 1] = 255
    return out
