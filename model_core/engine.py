"""The inference engine: tiled, multi-pass, seeded and cancellable denoising.

:meth:`Engine.run` returns a generator (for GUI workers) that yields a :class:`Progress` after
every tile of every pass, a :class:`TileUpdate` for each finished tile of the first pass (and
for the optional preview before it), and the :class:`DenoiseResult` last. :meth:`Engine.denoise`
drives it for scripts and the CLI.

Randomness: the attention keep-maps of a tile are drawn from a ``torch.Generator`` on the
model's device seeded from ``(seed, pass, tile index)``; the input mask (a demo option) is drawn
once per pass over the whole image from ``(seed, pass)``, so overlapping tiles agree on it.
The same settings therefore reproduce an output exactly, and passes differ. The tiling is part
of the settings (see ``RunSettings.tile``): another tile size gives other masks. The focus and
the preview change the order of the work and what is painted first, never the result.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from model_core.device import (
    autocast_context,
    configure_cpu_threads,
    max_tile_pixels,
    pick_device,
    resolve_precision,
    tile_bytes_per_pixel,
)
from model_core.network import MaskedSwinIR, ProbeRequest, SwinIRConfig, apply_input_mask, draw_keep_maps
from model_core.network.checkpoint import load_weights
from model_core.run_types import (
    AttentionView,
    Cancelled,
    DenoiseResult,
    Progress,
    RunSettings,
    TileUpdate,
    as_rgb,
    check_int,
)
from model_core.tiling import (
    PassStats,
    Tile,
    TileCanvas,
    context_span,
    fit_tiles,
    order_by_focus,
    plan_tiles,
    preview_box,
)

__all__ = [
    "AttentionView",
    "Cancelled",
    "DenoiseResult",
    "Engine",
    "Progress",
    "RunSettings",
    "TileUpdate",
    "as_rgb",
    "stream_seed",
]

# Seed stream of the input mask; tile indices (the other streams) never get this large.
INPUT_MASK_STREAM = 1 << 32
# Smallest tile an out-of-memory retry may fall back to, in windows.
_MIN_RETRY_WINDOWS = 4


def stream_seed(seed: int, pass_index: int, stream: int) -> int:
    """A well-mixed 63-bit generator seed for one random stream of one pass."""
    sequence = np.random.SeedSequence(seed, spawn_key=(pass_index, stream))
    return int(sequence.generate_state(1, dtype=np.uint64)[0]) & ((1 << 63) - 1)


class Engine:
    """Runs a :class:`MaskedSwinIR` on images of any size.

    Args:
        model: The network; it is moved to ``device`` and put in eval mode.
        device: ``"cuda"``, ``"cpu"``, a ``torch.device``, or None for CUDA when available.

    Attributes:
        card: The model card of the weights file (``from_file``), else empty.
        source: The weights file (``from_file``), else None.
    """

    def __init__(self, model: MaskedSwinIR, device: str | torch.device | None = None) -> None:
        if not isinstance(model, MaskedSwinIR):
            raise TypeError(f"model must be a MaskedSwinIR, got {type(model).__name__}")
        try:
            self._device = pick_device(device)
        except RuntimeError as exc:  # torch.device's error for a malformed name
            raise ValueError(f"unknown device {device!r}") from exc
        self.model = model.to(self._device).eval()
        if self._device.type == "cpu":
            configure_cpu_threads()
        self.card: dict[str, Any] = {}
        self.source: Path | None = None

    @classmethod
    def from_file(cls, path: str | Path, device: str | torch.device | None = None) -> Engine:
        """Load weights (mdn safetensors or an official checkpoint) into a new engine.

        Raises:
            CheckpointError: If the file is missing or unusable.
        """
        loaded = load_weights(path)
        engine = cls(loaded.model, device)
        engine.card = dict(loaded.card)
        engine.source = loaded.source
        return engine

    @property
    def device(self) -> torch.device:
        """Where the network runs."""
        return self._device

    @property
    def config(self) -> SwinIRConfig:
        """The network's architecture."""
        return self.model.cfg

    def denoise(self, image: np.ndarray, settings: RunSettings | None = None,
                progress: Callable[[Progress], None] | None = None,
                cancel: Callable[[], bool] | None = None) -> DenoiseResult:
        """Denoise ``image`` (see :meth:`run`), reporting progress to a callback."""
        for event in self.run(image, settings or RunSettings(), cancel):
            if isinstance(event, DenoiseResult):
                return event
            if isinstance(event, Progress) and progress is not None:
                progress(event)
        raise RuntimeError("Engine.run ended without a result")  # pragma: no cover

    def run(self, image: np.ndarray, settings: RunSettings,
            cancel: Callable[[], bool] | None = None
            ) -> Iterator[Progress | TileUpdate | DenoiseResult]:
        """Denoise ``image`` step by step.

        Args:
            image: (H, W, 3) RGB or (H, W) grayscale, float in [0, 1].
            settings: How to run.
            cancel: Polled before every tile; when it returns True, :class:`Cancelled` is raised.

        Returns:
            An iterator of Progress after every tile of every pass, TileUpdate for each
            finished tile of the first pass (and for the preview first, with ``settings.preview``:
            a Progress that announces it, its TileUpdate, then a Progress with ``done == 0``),
            and the DenoiseResult last. On CUDA out-of-memory the run restarts with half the
            tile size (announced by a Progress with ``total == 0``).

        Raises:
            TypeError, ValueError: At once (not on first iteration) for a bad image or settings.
        """
        return self._events(self._prepare(image, settings), settings, cancel)

    def _events(self, rgb: np.ndarray, settings: RunSettings, cancel: Callable[[], bool] | None
                ) -> Iterator[Progress | TileUpdate | DenoiseResult]:
        start = time.perf_counter()
        # Without attention or input masks nothing is random: N passes would be N identical ones.
        identical = settings.passes > 1 and not settings.attn_mask_ratio and not settings.input_mask_ratio
        if identical:
            settings = replace(settings, passes=1)
        while True:
            try:
                result = yield from self._run_passes(rgb, settings, cancel)
                if identical:
                    result.std = np.zeros_like(result.image)
                break
            except torch.OutOfMemoryError:
                if self._device.type == "cuda":
                    torch.cuda.empty_cache()
                settings = self._smaller_tiles(settings, rgb.shape[:2])
            yield Progress(0, 0, f"out of memory; retrying with tile {settings.tile}")
        result.seconds = time.perf_counter() - start
        yield result

    def attention_at(self, image: np.ndarray, pixel: tuple[int, int], block: int,
                     settings: RunSettings | None = None, *, context: int = 2) -> AttentionView:
        """Attention weights of ``pixel``'s token in ``block``, computed on a small crop.

        The crop is the pixel's window and up to ``context`` windows on each side, inside (and
        window-aligned with) the tile that owns the pixel in :meth:`run`; it gets that tile's
        first-pass keep-maps and input mask. Blocks 0 and 1 see exactly what a full run sees;
        deeper blocks an approximation that improves with ``context``.

        Args:
            image: As for :meth:`run`.
            pixel: Query (y, x).
            block: Global block index.
            settings: Masks, seed and tiling as for :meth:`run` (passes are ignored).
            context: Windows of context on each side (>= 1).
        """
        settings = settings or RunSettings()
        rgb = self._prepare(image, replace(settings, probe_blocks=(block,), focus=None))
        y, x = (check_int("pixel", v, 0) for v in pixel)
        h, w = rgb.shape[:2]
        if y >= h or x >= w:
            raise ValueError(f"pixel {(y, x)} is outside the {h}x{w} image")
        check_int("context", context, 1)
        tiles = self._plan(h, w, settings)
        tile = next(t for t in tiles if t.owns(y, x))
        ws = self.config.window_size
        y0, y1 = context_span(y, tile.y0, tile.y1, ws, context)
        x0, x1 = context_span(x, tile.x0, tile.x1, ws, context)
        with torch.inference_mode():
            full, _ = self._input_mask(self._to_tensor(rgb), settings, 0)
            keep = self._keep_maps(settings, 0, tile)
            if keep is not None:
                hp, wp = self.model.padded_size(y1 - y0, x1 - x0)
                keep = keep[:, :, y0 - tile.y0:y0 - tile.y0 + hp, x0 - tile.x0:x0 - tile.x0 + wp]
            probe = ProbeRequest((block,), (block,), ((y - y0, x - x0),))
            with self._autocast(settings.precision):
                _, found = self.model(full[:, :, y0:y1, x0:x1], keep_maps=keep, probe=probe)
        att = found.attention[0]
        return AttentionView(
            block, (y, x), att.weights[0].float().cpu().numpy(),
            att.key_rows.cpu().numpy() + y0, att.key_cols.cpu().numpy() + x0,
            found.keep_maps[block][0].to(torch.uint8).cpu().numpy(), (y0, x0, y1, x1))

    # ------------------------------------------------------------------ the passes

    def _run_passes(self, rgb: np.ndarray, settings: RunSettings,
                    cancel: Callable[[], bool] | None
                    ) -> Generator[Progress | TileUpdate, None, DenoiseResult]:
        h, w = rgb.shape[:2]
        tile_shape = self._tile_shape(settings, h, w)
        tiles = order_by_focus(plan_tiles(h, w, tile_shape, settings.overlap, self.config.window_size),
                               settings.focus)
        preview = self._preview_box(tiles[0], settings)
        work = _Work(tiles, settings.passes, preview)
        keep_maps = {b: np.ones((h, w), np.uint8) for b in settings.probe_blocks}
        stats = PassStats() if settings.passes > 1 else None
        input_keep, image = None, np.empty(0)
        full = self._to_tensor(rgb)
        for index in range(settings.passes):
            with torch.inference_mode():
                masked, keep = self._input_mask(full, settings, index)
            if keep is not None and index == 0:
                input_keep = keep[0, 0].float().cpu().numpy()
            image = yield from self._run_pass(masked, tiles, settings, index, cancel,
                                              keep_maps if index == 0 else {}, work)
            if stats is not None:
                stats.add(image)
        if stats is not None and stats.mean is not None:
            image = np.clip(stats.mean, 0.0, 1.0)
        std = stats.std() if stats is not None else None
        return DenoiseResult(image, std, input_keep, keep_maps, 0.0, str(self._device), settings,
                             tile_shape=(min(tile_shape[0], h), min(tile_shape[1], w)),
                             tile_count=len(tiles))

    def _run_pass(self, x: Tensor, tiles: list[Tile], settings: RunSettings, pass_index: int,
                  cancel: Callable[[], bool] | None, keep_maps: dict[int, np.ndarray], work: _Work
                  ) -> Generator[Progress | TileUpdate, None, np.ndarray]:
        """Run the tiles of one pass (in the order given) and blend them."""
        canvas = TileCanvas(x.shape[2], x.shape[3], settings.overlap)
        total = len(tiles) * settings.passes
        where = f"pass {pass_index + 1}/{settings.passes}"
        for n, tile in enumerate(tiles):
            if cancel is not None and cancel():
                raise Cancelled(f"cancelled before tile {n + 1}/{len(tiles)} of pass {pass_index + 1}")
            keep = self._keep_maps(settings, pass_index, tile)
            if pass_index == 0 and n == 0 and work.preview is not None:
                # Said before it starts: on a slow CPU even the preview takes a few seconds.
                y0, x0, y1, x1 = work.preview
                yield Progress(0, total, f"{where}, a {x1 - x0} x {y1 - y0} preview first", 0, work.total)
                yield self._preview(x, tile, work.preview, keep, settings)
                work.add(work.preview_pixels)
                yield Progress(0, total, f"{where}, preview", work.done, work.total)
                if cancel is not None and cancel():
                    raise Cancelled(f"cancelled after the preview of pass {pass_index + 1}")
            out = self._denoise_tile(x, tile, settings, keep, keep_maps)
            blended = canvas.add(tile, out)
            if pass_index == 0:
                yield TileUpdate(tile.y0, tile.x0, tile.y1, tile.x1, pass_index, blended)
            work.add(tile.shape[0] * tile.shape[1])
            yield Progress(pass_index * len(tiles) + n + 1, total,
                           f"{where}, tile {n + 1}/{len(tiles)}", work.done, work.total)
        return canvas.image()

    def _denoise_tile(self, x: Tensor, tile: Tile, settings: RunSettings, keep: Tensor | None,
                      keep_maps: dict[int, np.ndarray]) -> np.ndarray:
        """Run one tile with its attention keep-maps ``keep``; paint its core into ``keep_maps``.

        Returns:
            (h, w, 3) float32.
        """
        probe = ProbeRequest(keep_map_blocks=tuple(keep_maps)) if keep_maps else None
        with torch.inference_mode(), self._autocast(settings.precision):
            out = self.model(x[:, :, tile.y0:tile.y1, tile.x0:tile.x1], keep_maps=keep, probe=probe)
            if probe is not None:
                out, found = out
                _paint_cores(keep_maps, found.keep_maps, tile)
            return out[0].float().clamp(0.0, 1.0).permute(1, 2, 0).cpu().numpy()

    def _preview(self, x: Tensor, tile: Tile, box: tuple[int, int, int, int], keep: Tensor | None,
                 settings: RunSettings) -> TileUpdate:
        """Run ``box`` (inside ``tile``, window-aligned with it) alone with the tile's masks."""
        y0, x0, y1, x1 = box
        if keep is not None:  # the box's part of the tile's maps (it may reach the tile's padding)
            hp, wp = self.model.padded_size(y1 - y0, x1 - x0)
            keep = keep[:, :, y0 - tile.y0:y0 - tile.y0 + hp, x0 - tile.x0:x0 - tile.x0 + wp]
        with torch.inference_mode(), self._autocast(settings.precision):
            out = self.model(x[:, :, y0:y1, x0:x1], keep_maps=keep)
        image = out[0].float().clamp(0.0, 1.0).permute(1, 2, 0).cpu().numpy()
        return TileUpdate(y0, x0, y1, x1, 0, image)

    def _preview_box(self, tile: Tile, settings: RunSettings) -> tuple[int, int, int, int] | None:
        if not settings.preview:
            return None
        return preview_box(tile, settings.preview, settings.focus, self.config.window_size)

    # ------------------------------------------------------------------ helpers

    def _prepare(self, image: np.ndarray, settings: RunSettings) -> np.ndarray:
        if not isinstance(settings, RunSettings):
            raise TypeError(f"settings must be RunSettings, got {type(settings).__name__}")
        n = self.config.num_blocks
        bad = [b for b in settings.probe_blocks if b >= n]
        if bad:
            raise ValueError(f"probe blocks {bad} out of range: the network has {n} blocks")
        rgb = as_rgb(image)
        # Reflection padding to the window size needs more pixels than it adds.
        least = self.config.window_size // 2 + 1
        if min(rgb.shape[:2]) < least:
            raise ValueError(f"image is {rgb.shape[1]}x{rgb.shape[0]} (WxH); the network needs at least "
                             f"{least} pixels per side")
        return rgb

    def _to_tensor(self, rgb: np.ndarray) -> Tensor:
        """(H, W, 3) numpy -> (1, 3, H, W) on the device."""
        return torch.from_numpy(rgb).permute(2, 0, 1)[None].to(self._device)

    def _plan(self, height: int, width: int, settings: RunSettings) -> list[Tile]:
        ws = self.config.window_size
        return plan_tiles(height, width, self._tile_shape(settings, height, width),
                          settings.overlap, ws)

    def _tile_shape(self, settings: RunSettings, height: int, width: int) -> tuple[int, int]:
        """(tile height, tile width): the requested side if it fits the memory budget, else auto.

        Auto (tile 0, or a side too large for the budget) is the whole image when it fits, else
        the tiles within the budget that cover it with the fewest pixels (:func:`fit_tiles`).
        """
        cfg = self.config
        per_pixel = tile_bytes_per_pixel(cfg.embed_dim, cfg.num_blocks, self._device,
                                         resolve_precision(settings.precision, self._device))
        budget = max_tile_pixels(per_pixel, self._device)
        least = max(2 * settings.overlap + cfg.window_size, _MIN_RETRY_WINDOWS * cfg.window_size)
        side = self._tile_side(settings.tile)
        if settings.tile and (side * side <= budget or side <= least):
            return side, side
        return fit_tiles(height, width, max(budget, least * least), settings.overlap,
                         cfg.window_size, least)

    def _tile_side(self, tile: int) -> int:
        ws = self.config.window_size
        return -(-tile // ws) * ws

    def _generator(self, seed: int) -> torch.Generator:
        return torch.Generator(device=self._device).manual_seed(seed)

    def _keep_maps(self, settings: RunSettings, pass_index: int, tile: Tile) -> Tensor | None:
        """Attention keep-maps (num_blocks, 1, Hp, Wp) of a tile, or None without a mask."""
        if settings.attn_mask_ratio <= 0:
            return None
        hp, wp = self.model.padded_size(*tile.shape)
        generator = self._generator(stream_seed(settings.seed, pass_index, tile.index))
        return draw_keep_maps(self.config.num_blocks, 1, hp, wp, settings.attn_mask_ratio,
                              generator, self._device)

    def _input_mask(self, x: Tensor, settings: RunSettings, pass_index: int
                    ) -> tuple[Tensor, Tensor | None]:
        """Input-masked image and its keep-map (1, 1, H, W), or ``(x, None)`` when off."""
        if settings.input_mask_ratio <= 0:
            return x, None
        generator = self._generator(stream_seed(settings.seed, pass_index, INPUT_MASK_STREAM))
        return apply_input_mask(x, settings.input_mask_ratio, generator)

    def _autocast(self, precision: str) -> contextlib.AbstractContextManager[Any]:
        return autocast_context(self._device, resolve_precision(precision, self._device))

    def _smaller_tiles(self, settings: RunSettings, size: tuple[int, int]) -> RunSettings:
        """Settings with half the tile size, for a retry after running out of memory."""
        ws = self.config.window_size
        current = max(min(t, s) for t, s in zip(self._tile_shape(settings, *size), size, strict=True))
        tile = current // 2 // ws * ws
        if tile < _MIN_RETRY_WINDOWS * ws:
            raise torch.OutOfMemoryError(f"out of memory even with {current}-pixel tiles")
        return replace(settings, tile=tile, overlap=min(settings.overlap, tile // 4))


class _Work:
    """Pixels run through the network so far and in all, for :class:`Progress`."""

    def __init__(self, tiles: list[Tile], passes: int, preview: tuple[int, int, int, int] | None
                 ) -> None:
        self.preview = preview
        self.preview_pixels = 0 if preview is None else (preview[2] - preview[0]) * (preview[3] - preview[1])
        self.total = passes * sum(t.shape[0] * t.shape[1] for t in tiles) + self.preview_pixels
        self.done = 0

    def add(self, pixels: int) -> None:
        self.done += pixels


def _paint_cores(target: dict[int, np.ndarray], found: dict[int, Tensor], tile: Tile) -> None:
    """Copy each block's keep-map over the tile's core into the image-sized maps."""
    cy0, cx0, cy1, cx1 = tile.core
    for block, keep in found.items():
        local = keep[0, cy0 - tile.y0:cy1 - tile.y0, cx0 - tile.x0:cx1 - tile.x0]
        target[block][cy0:cy1, cx0:cx1] = local.to(torch.uint8).cpu().numpy()

