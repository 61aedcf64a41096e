"""What a run of the engine takes and gives: its settings, progress events and results.

Plain data (no torch): :mod:`model_core.engine` runs them, and re-exports every name here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "PRECISIONS",
    "AttentionView",
    "Cancelled",
    "DenoiseResult",
    "Progress",
    "RunSettings",
    "TileUpdate",
    "as_rgb",
    "check_int",
]

PRECISIONS = ("fp32", "bf16", "auto")


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int, if it is an integer of at least ``minimum`` (else TypeError/ValueError)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_ratio(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)


@dataclass(frozen=True)
class RunSettings:
    """How to run the denoiser.

    Attributes:
        attn_mask_ratio: Share of tokens each Swin block drops (0 = off; the paper trains
            and tests with 0.75).
        input_mask_ratio: Share of input pixels dropped before the network (a demo of
            masked training's input mask; 0 = off).
        passes: Stochastic passes with different masks; the result is their mean, with the
            per-pixel standard deviation. Without any mask the passes would be identical: one
            is run, and the standard deviation is zero.
        seed: Seed of all masks (non-negative).
        tile: Tile side in pixels (rounded up to the window size), or 0 (the default) for
            *auto*: the whole image at once when it fits the device's memory budget (see
            :func:`model_core.device.max_tile_pixels`), else the tiles within the budget that
            cover it with the fewest pixels (:func:`model_core.tiling.fit_tiles`). A requested
            side too large for the budget gets the auto tiles too, so memory stays bounded on
            any image. Masks are seeded per tile, so the tiling is part of what a result depends
            on: on a CPU the auto tiles depend only on the image size and the network; on CUDA
            on the memory free at the start (give a side to reproduce a GPU run elsewhere).
        overlap: Minimum overlap of neighbouring tiles, blended with a smooth window.
        precision: ``"fp32"``, ``"bf16"`` (autocast) or ``"auto"``: bf16 on CUDA and on CPUs with
            native bf16 (AVX512-BF16/AMX), else fp32; bf16 keeps the convolutions in fp32 and
            was measured within 0.003 dB of fp32 (see docs/PERFORMANCE.md).
        probe_blocks: Blocks whose first-pass keep-maps to return, assembled over the image.
        focus: (y, x) point whose nearest tiles are processed first (e.g. the view centre);
            it changes the order only, not which masks a tile gets.
        preview: Side of a quick preview (0 = none): before the first pass's first tile, a
            ``preview`` x ``preview`` box of it near ``focus`` is run alone, with that tile's
            masks, and sent as a :class:`TileUpdate` so that something shows at once. It is
            for display only: the tile itself is run whole afterwards and paints over it, so the
            result does not depend on the preview or the focus. Skipped when the box would hold
            more than a quarter of the tile (the tile itself comes soon enough then).
    """

    attn_mask_ratio: float = 0.75
    input_mask_ratio: float = 0.0
    passes: int = 1
    seed: int = 0
    tile: int = 0
    overlap: int = 32
    precision: str = "auto"
    probe_blocks: tuple[int, ...] = ()
    focus: tuple[int, int] | None = None
    preview: int = 0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "attn_mask_ratio", _check_ratio("attn_mask_ratio", self.attn_mask_ratio))
        set_(self, "input_mask_ratio", _check_ratio("input_mask_ratio", self.input_mask_ratio))
        for name, minimum in (("passes", 1), ("seed", 0), ("tile", 0), ("overlap", 0), ("preview", 0)):
            set_(self, name, check_int(name, getattr(self, name), minimum))
        if self.tile and self.overlap >= self.tile:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than tile ({self.tile})")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        set_(self, "probe_blocks", tuple(check_int("probe block", b, 0) for b in self.probe_blocks))
        if self.focus is not None:
            if len(self.focus) != 2:
                raise ValueError(f"focus must be (y, x), got {self.focus!r}")
            set_(self, "focus", tuple(check_int("focus", v, -(1 << 62)) for v in self.focus))


@dataclass
class Progress:
    """Work done so far: ``done`` of ``total`` tile evaluations (tiles x passes).

    ``work_done`` of ``work_total`` counts the same work in pixels run through the network
    (the preview's included): tiles differ in size, so this is what an ETA should use.
    """

    done: int
    total: int
    message: str
    work_done: int = 0
    work_total: int = 0

    @property
    def fraction(self) -> float:
        """Share of the run done, by pixels where known, else by tiles (0 when unknown)."""
        if self.work_total:
            return self.work_done / self.work_total
        return self.done / self.total if self.total else 0.0


@dataclass
class TileUpdate:
    """A finished tile of the first pass, for progressive painting.

    ``image`` is the blended output over the tile's region (y0:y1, x0:x1) from every tile
    finished so far, (y1-y0, x1-x0, 3) float32. Painting the updates in the order they come
    reproduces the first pass exactly: a pixel's last update comes from the last tile covering it.
    """

    y0: int
    x0: int
    y1: int
    x1: int
    pass_index: int
    image: np.ndarray


@dataclass
class DenoiseResult:
    """The outcome of a run.

    Attributes:
        image: (H, W, 3) float32 in [0, 1], the mean over passes.
        std: (H, W, 3) float32 per-pixel standard deviation over passes (numpy's ``ddof=0``),
            None for a single pass.
        input_keep: (H, W) float32 0/1 input mask of the first pass (1 = kept), or None.
        keep_maps: (H, W) uint8 0/1 first-pass keep-map of each requested block; where tiles
            overlap, the map of the tile owning the pixel (see ``Tile.core``).
        seconds: Wall time of the run.
        device: Where the network ran.
        settings: The settings used (the tile is smaller after an out-of-memory retry).
        tile_shape: (height, width) of the tiles the image was cut into; the image's size
            when it ran as one tile (the last tile of a row or column may be a little longer).
        tile_count: Number of tiles (per pass).
    """

    image: np.ndarray
    std: np.ndarray | None
    input_keep: np.ndarray | None
    keep_maps: dict[int, np.ndarray]
    seconds: float
    device: str
    settings: RunSettings
    tile_shape: tuple[int, int] = (0, 0)
    tile_count: int = 1


@dataclass
class AttentionView:
    """Attention of one pixel's token over its window in one block (see ``Engine.attention_at``).

    Attributes:
        block: Global block index.
        pixel: The query (y, x) in image coordinates.
        weights: (nH, ws, ws) float32 softmax weights; each head sums to 1.
        key_rows: (ws, ws) image row of each key token; rows >= H are reflection padding. In a
            shifted block's last window row, keys the cyclic shift wrapped around come from the
            top of the crop and get (almost) zero weight, as in the network.
        key_cols: (ws, ws) image column of each key token, likewise.
        keep_map: (y1-y0, x1-x0) uint8 keep-map of ``block`` over the crop (1 = kept).
        crop: (y0, x0, y1, x1) of the region that was run through the network.
    """

    block: int
    pixel: tuple[int, int]
    weights: np.ndarray
    key_rows: np.ndarray
    key_cols: np.ndarray
    keep_map: np.ndarray
    crop: tuple[int, int, int, int]


class Cancelled(Exception):
    """Raised by :meth:`Engine.run` when its ``cancel`` callback returns True."""


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Validate an image and return it as (H, W, 3) float32.

    Accepts HWC RGB, HW or HW1 grayscale (repeated to 3 channels), any float dtype. Values
    outside [0, 1] are allowed (unclipped noisy images) but must be finite.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    if not np.issubdtype(image.dtype, np.floating):
        raise TypeError(f"image must be float with values in [0, 1], got dtype {image.dtype} "
                        "(divide 8-bit images by 255)")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3) or 0 in image.shape:
        raise ValueError(f"image must be (H, W, 3) RGB or (H, W) grayscale, got shape {image.shape}")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    rgb = np.ascontiguousarray(image, dtype=np.float32)
    if not np.isfinite(rgb).all():
        raise ValueError("image contains NaN or infinite values")
    return rgb
