"""Overlapping tiles over an image, and the accumulators that blend tiles and passes.

Tiles along each axis start every ``tile - overlap`` pixels, rounded to the network's window
size so that tiles share the whole image's window grid; the last one stretches to the image
edge. Each tile's output is weighted by a raised-cosine ramp over ``overlap`` pixels on every
side that has a neighbour (weight 1 elsewhere), and the weighted sum is divided by the summed
weights (:class:`TileCanvas`). :class:`PassStats` keeps the running mean and standard deviation
of several passes. Both hold a fixed number of image-sized float32 arrays, so memory does not
grow with the number of tiles or passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "PassStats",
    "Tile",
    "TileCanvas",
    "axis_spans",
    "blend_window",
    "context_span",
    "default_overlap",
    "fit_tiles",
    "order_by_focus",
    "plan_tiles",
    "preview_box",
]


DEFAULT_OVERLAP = 32


def default_overlap(tile: int) -> int:
    """The tile overlap used when none is given: 32 pixels, a quarter of tiles under 128.

    Args:
        tile: Tile side in pixels; 0 means the whole image at once (no overlap is used then).
    """
    return min(DEFAULT_OVERLAP, tile // 4) if tile else DEFAULT_OVERLAP


@dataclass(frozen=True)
class Tile:
    """One tile of an image.

    Attributes:
        index: Row-major position in the tile grid; identifies the tile independently of the
            order in which tiles are processed (random masks are seeded from it).
        y0: First row.
        x0: First column.
        y1: One past the last row.
        x1: One past the last column.
        core: (y0, x0, y1, x1) of the pixels this tile owns: every pixel is owned by exactly
            one tile, the one whose centre region it lies in (the overlap is split in the middle).
    """

    index: int
    y0: int
    x0: int
    y1: int
    x1: int
    core: tuple[int, int, int, int]

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the tile."""
        return self.y1 - self.y0, self.x1 - self.x0

    def contains(self, y: int, x: int) -> bool:
        """Whether pixel (y, x) lies in this tile."""
        return self.y0 <= y < self.y1 and self.x0 <= x < self.x1

    def owns(self, y: int, x: int) -> bool:
        """Whether pixel (y, x) lies in this tile's core."""
        cy0, cx0, cy1, cx1 = self.core
        return cy0 <= y < cy1 and cx0 <= x < cx1


def axis_spans(length: int, tile: int, overlap: int, multiple: int = 1
               ) -> list[tuple[int, int, int, int]]:
    """Tile spans along one axis.

    Tiles start at multiples of ``multiple`` (the network's window size), so every tile sees the
    same window grid as the whole image would; the last tile ends at the image edge and may be
    up to ``multiple - 1`` pixels longer than the others (so it is never too short to pad).

    Args:
        length: Image size along the axis (>= 1).
        tile: Tile size, a multiple of ``multiple``; 0 or >= ``length`` gives one span.
        overlap: Minimum overlap of neighbouring tiles, 0 <= overlap < tile. The overlap is
            at least ``tile - (tile - overlap) // multiple * multiple``, and at most
            ``tile - multiple`` when the step would otherwise be 0.
        multiple: Alignment of tile starts.

    Returns:
        (start, stop, core_start, core_stop) per tile, in increasing order; the cores
        split every overlap in the middle and together cover the axis once.
    """
    if length < 1 or multiple < 1:
        raise ValueError(f"length and multiple must be >= 1, got {length} and {multiple}")
    if tile <= 0 or tile >= length:
        return [(0, length, 0, length)]
    if tile % multiple or not 0 <= overlap < tile:
        raise ValueError(f"need a tile that is a multiple of {multiple} and 0 <= overlap < tile, "
                         f"got tile {tile}, overlap {overlap}")
    step = max(multiple, (tile - overlap) // multiple * multiple)
    last = (length - tile) // multiple * multiple
    starts = list(range(0, last, step)) + [last]
    stops = [s + tile for s in starts[:-1]] + [length]
    cuts = [0] + [(nxt + stop) // 2 for stop, nxt in zip(stops, starts[1:], strict=False)]
    cuts.append(length)
    return [(s, stops[i], cuts[i], cuts[i + 1]) for i, s in enumerate(starts)]


def plan_tiles(height: int, width: int, tile: int | tuple[int, int], overlap: int,
               multiple: int = 1) -> list[Tile]:
    """Cover a ``height`` x ``width`` image with overlapping tiles (see :func:`axis_spans`).

    Args:
        height: Image height.
        width: Image width.
        tile: Tile side (0 = one tile over the whole image), or (tile height, tile width).
        overlap: Minimum overlap of neighbouring tiles.
        multiple: Alignment of tile starts (the window size).

    Returns:
        The tiles in row-major order (``Tile.index`` equals the list position).
    """
    tile_h, tile_w = tile if isinstance(tile, tuple) else (tile, tile)
    rows = axis_spans(height, tile_h, overlap, multiple)
    cols = axis_spans(width, tile_w, overlap, multiple)
    tiles = []
    for ry0, ry1, cy0, cy1 in rows:
        for rx0, rx1, cx0, cx1 in cols:
            tiles.append(Tile(len(tiles), ry0, rx0, ry1, rx1, (cy0, cx0, cy1, cx1)))
    return tiles


def _axis_options(length: int, overlap: int, multiple: int, least: int) -> list[tuple[int, int, int]]:
    """(tile length, pixels covered by its spans, span count) of each way to cut an axis in n tiles.

    For n tiles the length is the smallest multiple of ``multiple`` whose spans reach the edge
    in n tiles, so that neighbours overlap by about ``overlap`` and no more; n grows until a
    tile would be shorter than ``least``. Longest tiles first.
    """
    options = [(length, length, 1)]
    for n in range(2, length // max(least, 1) + 2):
        side = -(-(length + (n - 1) * overlap) // n)
        side = -(-side // multiple) * multiple
        if side < max(least, overlap + 1):
            break
        if side >= options[-1][0]:
            continue
        spans = axis_spans(length, side, overlap, multiple)
        options.append((side, sum(stop - start for start, stop, _, _ in spans), len(spans)))
    return options


def fit_tiles(height: int, width: int, max_pixels: int, overlap: int, multiple: int = 1,
              least: int = 1) -> tuple[int, int]:
    """The tile (height, width) that covers an image with the fewest pixels within a budget.

    The whole image when it fits ``max_pixels``; else, among the ways to cut each axis into n
    equal window-aligned tiles, the one whose tiles hold at most ``max_pixels`` and cover the
    image with the fewest pixels in all (overlaps counted as often as they are run), then the
    fewest tiles. A 3000x4000 image with room for 872x872 tiles gets 3x6 tiles of 1024x696
    (1.07x the image's pixels) instead of 4x5 square ones (1.27x: the last row and column
    overlap their neighbours by hundreds of pixels).

    Args:
        height: Image height.
        width: Image width.
        max_pixels: Largest tile area.
        overlap: Overlap of neighbouring tiles.
        multiple: Alignment of tile starts and sides (the window size).
        least: Shortest tile side allowed (it wins over ``max_pixels`` when they conflict).

    Returns:
        (tile height, tile width); a side equal to the image's means one tile along that axis.
    """
    if height * width <= max_pixels:
        return height, width
    rows = _axis_options(height, overlap, multiple, least)
    cols = _axis_options(width, overlap, multiple, least)
    best: tuple[int, int, int, int] | None = None  # (pixels, tiles, tile height, tile width)
    for th, covered_h, count_h in rows:
        for tw, covered_w, count_w in cols:
            candidate = (covered_h * covered_w, count_h * count_w, th, tw)
            if th * tw <= max_pixels and (best is None or candidate < best):
                best = candidate
    if best is None:  # not even the smallest tiles fit: take them anyway
        return rows[-1][0], cols[-1][0]
    return best[2], best[3]


def preview_box(tile: Tile, side: int, focus: tuple[int, int] | None, multiple: int = 1
                ) -> tuple[int, int, int, int] | None:
    """A ``side`` x ``side`` box inside ``tile``, window-aligned with it, centred near ``focus``.

    Returns:
        (y0, x0, y1, x1), or None when the tile is too small for a box of that side to be
        worth it (it should hold at most a quarter of the tile).
    """
    side = -(-side // multiple) * multiple
    h, w = tile.shape
    if side <= 0 or 4 * side * side > h * w or side > h or side > w:
        return None
    fy, fx = focus if focus is not None else ((tile.y0 + tile.y1) // 2, (tile.x0 + tile.x1) // 2)

    def start(centre: int, lo: int, hi: int) -> int:
        offset = (min(max(centre - side // 2, lo), hi - side) - lo) // multiple * multiple
        return lo + offset

    y0, x0 = start(fy, tile.y0, tile.y1), start(fx, tile.x0, tile.x1)
    return y0, x0, y0 + side, x0 + side


def _ramp(size: int, overlap: int, before: bool, after: bool) -> np.ndarray:
    """1-D weights: a raised cosine rising over ``overlap`` samples at each flagged end."""
    weights = np.ones(size, dtype=np.float32)
    width = min(overlap, size // 2)
    if width <= 0:
        return weights
    # Strictly positive (offset by half a sample) so every pixel keeps a non-zero weight.
    rise = np.sin(0.5 * np.pi * (np.arange(width) + 0.5) / width) ** 2
    if before:
        weights[:width] = rise
    if after:
        weights[size - width:] = np.minimum(weights[size - width:], rise[::-1])
    return weights


def blend_window(tile: Tile, height: int, width: int, overlap: int) -> np.ndarray:
    """Blending weights of ``tile`` in an image of ``height`` x ``width``.

    Sides on the image border keep weight 1, so a lone tile is weighted uniformly.

    Returns:
        (tile height, tile width) float32 weights in (0, 1].
    """
    h, w = tile.shape
    wy = _ramp(h, overlap, tile.y0 > 0, tile.y1 < height)
    wx = _ramp(w, overlap, tile.x0 > 0, tile.x1 < width)
    return wy[:, None] * wx[None, :]


def order_by_focus(tiles: list[Tile], focus: tuple[int, int] | None) -> list[Tile]:
    """Tiles sorted by the distance of their centre to ``focus`` (y, x); unchanged if None."""
    if focus is None:
        return list(tiles)
    fy, fx = focus

    def distance(t: Tile) -> tuple[float, int]:
        return math.hypot((t.y0 + t.y1) / 2 - fy, (t.x0 + t.x1) / 2 - fx), t.index

    return sorted(tiles, key=distance)


def context_span(v: int, start: int, stop: int, multiple: int, context: int) -> tuple[int, int]:
    """Span inside [start, stop) of ``v``'s window and ``context`` windows each side.

    Windows are ``multiple`` wide and aligned with ``start`` (a tile's first row or column).
    """
    window = (v - start) // multiple
    return (start + max(0, window - context) * multiple,
            min(stop, start + (window + context + 1) * multiple))


class TileCanvas:
    """Blends tile outputs into one image with the weights of :func:`blend_window`.

    Holds two accumulators, a weighted sum (H, W, C) and the summed weights (H, W, 1), in
    float32; results are clipped to [0, 1].

    Args:
        height: Image height.
        width: Image width.
        overlap: The tiling's overlap (the width of the blending ramps).
        channels: Channels of the tile outputs.
    """

    def __init__(self, height: int, width: int, overlap: int, channels: int = 3) -> None:
        self.height, self.width, self.overlap = height, width, overlap
        self._sum = np.zeros((height, width, channels), np.float32)
        self._weight = np.zeros((height, width, 1), np.float32)

    def add(self, tile: Tile, values: np.ndarray) -> np.ndarray:
        """Blend in a tile's (h, w, C) output; returns the blended tile region so far.

        A pixel's value in the region returned by the last tile covering it is final, so
        painting the returned regions in order reproduces :meth:`image` exactly.
        """
        region = np.s_[tile.y0:tile.y1, tile.x0:tile.x1]
        weight = blend_window(tile, self.height, self.width, self.overlap)[..., None]
        self._sum[region] += values * weight
        self._weight[region] += weight
        return self._normalise(region)

    def image(self) -> np.ndarray:
        """The blended image (H, W, C) float32 in [0, 1]; NaN where no tile was added."""
        return self._normalise(np.s_[:, :])

    def _normalise(self, region: tuple[slice, slice]) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.clip(self._sum[region] / self._weight[region], 0.0, 1.0)


class PassStats:
    """Running per-pixel mean and standard deviation of images (Welford's method, float32).

    Holds two image-sized accumulators, whatever the number of images added.
    """

    def __init__(self) -> None:
        self.count = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def add(self, image: np.ndarray) -> None:
        """Add one (H, W, C) image."""
        self.count += 1
        if self.mean is None or self.m2 is None:
            self.mean, self.m2 = image.copy(), np.zeros_like(image)
            return
        delta = image - self.mean
        self.mean += delta / np.float32(self.count)
        self.m2 += delta * (image - self.mean)

    def std(self) -> np.ndarray:
        """Per-pixel standard deviation (``ddof=0``) of the images added so far."""
        if self.m2 is None:
            raise ValueError("no image was added")
        return np.sqrt(self.m2 / np.float32(self.count))
