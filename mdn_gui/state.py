"""The workbench's document: plain Python, no Qt.

The document holds the source image, the noise and model settings, the image layers that
can be compared (clean, noisy, model outputs, opened results), their metrics and what each
model run left for inspection. Views subscribe to its :class:`Event` s and render; the
controllers are the only writers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CLEAN = "clean"
NOISY = "noisy"
MASKED = "masked"
BASELINE = "baseline"
CUSTOM = "custom"
CLASSICAL = "classical"

# Order of the built-in layers in pickers and plots; opened results follow.
BUILTIN_LAYERS = (CLEAN, NOISY, MASKED, BASELINE, CUSTOM, CLASSICAL)
# Model choices of the model panel and the layer each one writes.
MODEL_LAYERS = {"masked": MASKED, "baseline": BASELINE, "custom": CUSTOM, "nlm": CLASSICAL, "bm3d": CLASSICAL}
NETWORK_MODELS = ("masked", "baseline", "custom")
CLASSICAL_MODELS = ("nlm", "bm3d")
VIEW_MODES = ("split", "side", "toggle", "diff")
# |B - clean|, |A - clean| (where each side errs) and |B - A|.
DIFF_REFERENCES = ("clean", "a_clean", "before")
# Largest seed and number of passes the panels and the command line accept.
MAX_SEED = 2**31 - 1
MAX_PASSES = 64


class Event:
    """A minimal synchronous observable: callbacks run in connection order."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        """Call ``callback`` on every :meth:`emit`; returns it (usable as a decorator)."""
        self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable[..., Any]) -> None:
        """Stop calling ``callback``; unknown callbacks are ignored."""
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        """Call every connected callback with ``args``."""
        for callback in list(self._callbacks):
            callback(*args)


@dataclass
class Layer:
    """One image that can be shown as A or B.

    Attributes:
        key: Identifier (``"clean"``, ``"noisy"``, ``"masked"``, ..., ``"opened:<name>"``).
        label: Text shown in pickers.
        image: float32 (H, W, 3) RGB in [0, 1].
        version: Increases whenever the pixels change (metrics refer to a version).
        info: One line about where it came from.
        partial: True while a model run is still painting it tile by tile.
        display: uint8 (H, W, 3) pixels of ``image`` converted in the worker for display (large
            images only; None otherwise, and once a tile is pasted into the layer).
    """

    key: str
    label: str
    image: np.ndarray
    version: int = 0
    info: str = ""
    partial: bool = False
    display: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Metrics:
    """Quality of a layer against the clean image (``ssim`` None until computed)."""

    psnr: float
    ssim: float | None = None


def psnr_text(value: float, unit: bool = True) -> str:
    """A PSNR for people: ``"20.25 dB"``, or ``"∞ dB"`` for an image identical to the clean one."""
    text = f"{value:.2f}" if math.isfinite(value) else "∞"
    return f"{text} dB" if unit else text


@dataclass(frozen=True)
class NoiseSettings:
    """Synthetic noise applied to the clean image."""

    kind: str = "gaussian"
    level: float = 25.0
    seed: int = 0


@dataclass(frozen=True)
class ModelSettings:
    """What a run uses: the model and the inference settings.

    Attributes:
        model: One of ``masked``, ``baseline``, ``custom`` (a weights file), ``nlm``, ``bm3d``.
        weights: The weights file of the ``custom`` model.
        device: Torch device name.
        attn_ratio: Share of tokens dropped in every attention layer.
        input_ratio: Share of input pixels dropped (demonstration only).
        passes: Number of stochastic passes averaged.
        seed: Seed of the masks.
        tile: Tile side in pixels; 0 (the default) = auto: the whole image, cut into tiles only
            where the memory budget needs it (``RunSettings.tile``).
        precision: ``auto`` (the engine's choice: bf16 where the hardware runs it natively),
            ``fp32`` or ``bf16``.
    """

    model: str = "masked"
    weights: Path | None = None
    device: str = "cpu"
    attn_ratio: float = 0.75
    input_ratio: float = 0.0
    passes: int = 1
    seed: int = 0
    tile: int = 0
    precision: str = "auto"


@dataclass(frozen=True)
class ViewSettings:
    """How the comparison view shows layers A and B."""

    mode: str = "split"
    a: str = NOISY
    b: str = MASKED
    diff_ref: str = "clean"


@dataclass
class RunRecord:
    """What a model run left for inspection besides the output image.

    Attributes:
        keep_maps: Block index to (H, W) uint8 keep-map (1 kept, 0 dropped).
        input_keep: (H, W) input keep-map, or None without an input mask.
        std: (H, W, 3) per-pixel std over the passes, or None for one pass.
        seconds: Wall time of the run.
        device: Device it ran on.
        model: The model choice that produced it.
        weights: The weights file used (None for classical methods).
        num_blocks: Swin blocks of the model (0 for classical methods).
        depths: Blocks per residual group (to tell groups and shifted windows apart).
        attn_ratio: Attention-mask ratio of the run.
        gen: Generation number of the job that produced it.
        tile_shape: (height, width) of the tiles the engine used; the image's size when it
            ran whole ((0, 0) for classical methods).
        tile_count: Number of tiles per pass (0 for classical methods).
        pixels_per_second: Pixels the network ran (every pass, tile overlaps and the preview
            counted) per second of the run; 0 for classical methods.
    """

    keep_maps: dict[int, np.ndarray] = field(default_factory=dict)
    input_keep: np.ndarray | None = None
    std: np.ndarray | None = None
    seconds: float = 0.0
    device: str = ""
    model: str = ""
    weights: Path | None = None
    num_blocks: int = 0
    depths: tuple[int, ...] = ()
    attn_ratio: float = 0.0
    gen: int = 0
    tile_shape: tuple[int, int] = (0, 0)
    tile_count: int = 0
    pixels_per_second: float = 0.0

    def tiling_text(self) -> str:
        """How the image was cut: ``"whole image (512 x 512)"``, ``"18 tiles of 696 x 1024"``, or ''."""
        if not self.tile_count:
            return ""
        h, w = self.tile_shape
        if self.tile_count == 1:
            return f"whole image ({w} x {h})"
        return f"{self.tile_count} tiles of {w} x {h}"


class Document:
    """The state of one workbench session.

    Events (callbacks get the arguments in brackets):
        source_changed (): a new source image; every layer was replaced.
        layers_changed (key): a layer was added, replaced or removed.
        layer_updated (key, (y0, x0, y1, x1)): pixels of a layer changed in place.
        metrics_changed (): metrics were added or dropped.
        noise_changed (settings), model_changed (settings), view_changed (settings).
        record_changed (key): the run record of a layer changed.
        sweep_changed (kind): points of a sweep were added or cleared.
    """

    def __init__(self) -> None:
        self.source_name = ""
        self.source_path: Path | None = None
        self.has_clean = False
        self.noise = NoiseSettings()
        self.model = ModelSettings()
        self.view = ViewSettings()
        self.layers: dict[str, Layer] = {}
        self.metrics: dict[str, Metrics] = {}
        self.records: dict[str, RunRecord] = {}
        self.source_changed = Event()
        self.layers_changed = Event()
        self.layer_updated = Event()
        self.metrics_changed = Event()
        self.noise_changed = Event()
        self.model_changed = Event()
        self.view_changed = Event()
        self.record_changed = Event()
        self.sweeps: dict[str, dict[str, list[tuple[float, float]]]] = {"attention": {}, "noise": {}}
        self.sweep_changed = Event()
        self._versions = 0

    # ------------------------------------------------------------------ source and layers

    @property
    def clean(self) -> np.ndarray | None:
        """The clean reference, or None for a real noisy photo."""
        layer = self.layers.get(CLEAN)
        return layer.image if layer is not None else None

    @property
    def noisy(self) -> np.ndarray | None:
        """The image the models denoise."""
        layer = self.layers.get(NOISY)
        return layer.image if layer is not None else None

    @property
    def image_size(self) -> tuple[int, int] | None:
        """(height, width) of the source, or None before one is opened."""
        image = self.noisy if self.noisy is not None else self.clean
        return None if image is None else (image.shape[0], image.shape[1])

    def set_source(
        self,
        name: str,
        image: np.ndarray,
        *,
        noisy: bool = False,
        path: Path | None = None,
        display: np.ndarray | None = None,
    ) -> None:
        """Replace everything with a new source image.

        Args:
            name: Name shown in the title.
            image: float32 (H, W, 3) in [0, 1].
            noisy: True for a real noisy photo with no clean reference.
            path: The file it came from.
            display: Its uint8 pixels for display, when already converted.
        """
        image = as_rgb(image)
        self.source_name, self.source_path, self.has_clean = name, path, not noisy
        self.layers.clear()
        self.metrics.clear()
        self.records.clear()
        if noisy:
            self._put(Layer(NOISY, "noisy (real photo)", image, info="opened as noisy, no reference"))
        else:
            self._put(Layer(CLEAN, "clean", image, info="clean reference"))
        self.layers[NOISY if noisy else CLEAN].display = display
        self.source_changed.emit()

    def set_layer(
        self,
        key: str,
        image: np.ndarray,
        *,
        label: str | None = None,
        info: str = "",
        partial: bool = False,
        display: np.ndarray | None = None,
    ) -> Layer:
        """Add or replace a layer (its metrics are dropped) and announce it."""
        label = label or self.layers.get(key, Layer(key, key, image)).label
        layer = self._put(Layer(key, label, as_rgb(image), info=info, partial=partial, display=display))
        if self.metrics.pop(key, None) is not None:
            self.metrics_changed.emit()
        self.layers_changed.emit(key)
        return layer

    def remove_layer(self, key: str) -> None:
        """Drop a layer, its metrics and its run record."""
        if self.layers.pop(key, None) is None:
            return
        self.records.pop(key, None)
        if self.metrics.pop(key, None) is not None:
            self.metrics_changed.emit()
        self.layers_changed.emit(key)

    def paste_tile(self, key: str, box: tuple[int, int, int, int], tile: np.ndarray) -> None:
        """Write a finished tile into a (partial) layer in place."""
        layer = self.layers.get(key)
        if layer is None:
            return
        y0, x0, y1, x1 = box
        layer.image[y0:y1, x0:x1] = as_rgb(tile)[: y1 - y0, : x1 - x0]
        layer.display = None
        self._versions += 1
        layer.version = self._versions
        self.layer_updated.emit(key, box)

    def _put(self, layer: Layer) -> Layer:
        self._versions += 1
        layer.version = self._versions
        self.layers[layer.key] = layer
        return layer

    def ordered_keys(self) -> list[str]:
        """Layer keys, built-in ones first, then opened results in opening order."""
        builtin = [k for k in BUILTIN_LAYERS if k in self.layers]
        return builtin + [k for k in self.layers if k not in BUILTIN_LAYERS]

    def result_keys(self) -> list[str]:
        """Keys of layers that are not the clean or noisy image."""
        return [k for k in self.ordered_keys() if k not in (CLEAN, NOISY)]

    # ------------------------------------------------------------------ settings

    def update_noise(self, **changes: Any) -> bool:
        """Change noise settings; returns whether anything changed."""
        new = dataclasses.replace(self.noise, **changes)
        if new == self.noise:
            return False
        self.noise = new
        self.noise_changed.emit(new)
        return True

    def update_model(self, **changes: Any) -> bool:
        """Change model settings; returns whether anything changed."""
        new = dataclasses.replace(self.model, **changes)
        if new == self.model:
            return False
        self.model = new
        self.model_changed.emit(new)
        return True

    def update_view(self, **changes: Any) -> bool:
        """Change view settings; returns whether anything changed."""
        if changes.get("mode", self.view.mode) not in VIEW_MODES:
            raise ValueError(f"view mode must be one of {VIEW_MODES}")
        if changes.get("diff_ref", self.view.diff_ref) not in DIFF_REFERENCES:
            raise ValueError(f"difference reference must be one of {DIFF_REFERENCES}")
        new = dataclasses.replace(self.view, **changes)
        if new == self.view:
            return False
        self.view = new
        self.view_changed.emit(new)
        return True

    # ------------------------------------------------------------------ results

    def set_metrics(self, key: str, version: int, metrics: Metrics) -> bool:
        """Store metrics computed on ``version`` of a layer; stale ones are ignored."""
        layer = self.layers.get(key)
        if layer is None or layer.version != version or not self.has_clean:
            return False
        self.metrics[key] = metrics
        self.metrics_changed.emit()
        return True

    def set_record(self, key: str, record: RunRecord) -> None:
        """Attach what a run left for inspection to a layer."""
        self.records[key] = record
        self.record_changed.emit(key)

    def clear_sweep(self, kind: str) -> None:
        """Forget the points of a sweep (``attention`` or ``noise``)."""
        self.sweeps[kind] = {}
        self.sweep_changed.emit(kind)

    def add_sweep_point(self, kind: str, series: str, x: float, y: float) -> None:
        """Add one computed point to a curve of a sweep."""
        self.sweeps[kind].setdefault(series, []).append((float(x), float(y)))
        self.sweep_changed.emit(kind)

    def shown_pair(self) -> tuple[str | None, str | None]:
        """The A and B layer keys to show, falling back to what exists."""
        keys = self.ordered_keys()
        if not keys:
            return None, None
        fallback = NOISY if NOISY in self.layers else keys[0]
        a = self.view.a if self.view.a in self.layers else fallback
        b = self.view.b if self.view.b in self.layers else a
        return a, b


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Check and convert an image to contiguous float32 (H, W, 3) in [0, 1]."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"an image must be a numpy array, not {type(image).__name__}")
    arr = image
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.shape[2] == 4:
        arr = arr[..., :3]
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.float32 and arr.flags.c_contiguous and arr.min() >= 0.0 and arr.max() <= 1.0:
        return arr  # already in the convention: no copy (clipping 54 MP took seconds)
    return np.ascontiguousarray(np.clip(arr, 0.0, 1.0), dtype=np.float32)
