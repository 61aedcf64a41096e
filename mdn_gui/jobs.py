"""What the GUI asks the worker to do, and what comes back: frozen dataclasses, no Qt.

Every job carries the generation number it was issued under; the worker skips jobs whose
generation is no longer the latest of their channel and the controller drops results of
stale generations (see :class:`GenerationBoard`).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mdn_gui.compose import to_uint8
from mdn_gui.state import Metrics, ModelSettings, RunRecord
from model_core.engine import AttentionView, RunSettings
from model_core.noise import NoiseSpec
from model_core.tiling import default_overlap

NOISE, SWEEP, ATTENTION, DIFF = "noise", "sweep", "attention", "diff"
OPEN, OPEN_RESULT = "open", "open:result"  # the source image; an extra result layer
# Above this many pixels, decoding, display conversion and difference heatmaps go to the
# worker: they cost about 0.25 s a megapixel on a busy CPU (17 s for a 54 MP photo).
GUI_MAX_PIXELS = 500_000


# Side of the preview a run paints first, near the view centre (RunSettings.preview): at most
# PREVIEW_SIDE, a sixteenth of a 512x512 image; as much as the network covers in PREVIEW_SECONDS
# at the speed its last run measured. Before any run, FIRST_CPU_PREVIEW on a CPU: the lite
# network takes ~0.3 s for 64 x 64 on a 2-core AMD EPYC (AVX2), ~1.2 s for 128 x 128 (more
# while the CPU also adds noise to a large image).
PREVIEW_SIDE = 128
FIRST_CPU_PREVIEW = 64
MIN_PREVIEW = 32
PREVIEW_SECONDS = 1.0
KEEP_MAP_BUDGET = 64_000_000  # bytes of keep-maps kept per run


def preview_side(pixels_per_second: float | None, device: str) -> int:
    """Side of a run's preview, from the network's measured speed (None: not measured yet)."""
    if PREVIEW_SIDE <= 0:
        return 0
    if not pixels_per_second:
        side = min(FIRST_CPU_PREVIEW, PREVIEW_SIDE) if device == "cpu" else PREVIEW_SIDE
    else:
        side = int(math.sqrt(pixels_per_second * PREVIEW_SECONDS)) // 8 * 8
    return min(max(side, min(MIN_PREVIEW, PREVIEW_SIDE)), PREVIEW_SIDE)


def engine_settings(
    model: ModelSettings, focus: tuple[int, int] | None = None, preview: int | None = None
) -> RunSettings:
    """The engine settings of an app run: the model settings, the view's focus and a preview
    (of side ``preview``; None: :data:`PREVIEW_SIDE`).

    The benchmark (``benchmarks/bench_inference.py --parts app``) times runs with these too.
    """
    return RunSettings(
        attn_mask_ratio=model.attn_ratio,
        input_mask_ratio=model.input_ratio,
        passes=model.passes,
        seed=model.seed,
        tile=model.tile,
        overlap=default_overlap(model.tile),
        precision=model.precision,
        focus=focus,
        preview=PREVIEW_SIDE if preview is None else preview,
    )


def probe_blocks(image: np.ndarray, num_blocks: int, budget: int = KEEP_MAP_BUDGET) -> tuple[int, ...]:
    """Blocks whose keep-maps a run records: all of them, or evenly spaced ones for huge images.

    Each map is one byte per pixel, so 24 blocks of a 4K image would hold 200 MB.
    """
    pixels = image.shape[0] * image.shape[1]
    count = max(1, min(num_blocks, budget // max(pixels, 1)))
    return tuple(sorted({round(i * (num_blocks - 1) / max(count - 1, 1)) for i in range(count)}))



def display_of(image: np.ndarray, max_gui_pixels: int = GUI_MAX_PIXELS) -> np.ndarray | None:
    """uint8 pixels for the display of a large image (made in the worker), None for a small one."""
    if image.shape[0] * image.shape[1] <= max_gui_pixels:
        return None
    return to_uint8(image)


def run_channel(layer: str) -> str:
    """Channel of the runs that write ``layer`` (runs into different layers coexist)."""
    return f"run:{layer}"


def metrics_channel(layer: str) -> str:
    """Channel of the metrics of ``layer``."""
    return f"metrics:{layer}"


class GenerationBoard:
    """The latest generation of each channel, shared by the GUI and worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, int] = {}
        self._counter = 0

    def issue(self, channel: str) -> int:
        """A new generation for ``channel``; everything issued before on it becomes stale."""
        with self._lock:
            self._counter += 1
            self._latest[channel] = self._counter
            return self._counter

    def cancel(self, channel: str) -> None:
        """Make the current job of ``channel`` stale without issuing another."""
        self.issue(channel)

    def cancel_matching(self, prefix: str) -> None:
        """Cancel every channel whose name starts with ``prefix``."""
        with self._lock:
            for channel in self._latest:
                if channel.startswith(prefix):
                    self._counter += 1
                    self._latest[channel] = self._counter

    def is_current(self, channel: str, gen: int) -> bool:
        """Whether ``gen`` is still the latest generation of ``channel``."""
        with self._lock:
            return self._latest.get(channel) == gen


@dataclass(frozen=True)
class ModelRef:
    """A denoiser: a network weights file or a classical method.

    Attributes:
        choice: ``masked``, ``baseline``, ``custom``, ``nlm`` or ``bm3d``.
        path: The weights file of a network (None for classical methods).
        label: Name shown in plots.
    """

    choice: str
    path: Path | None
    label: str

    @property
    def is_network(self) -> bool:
        return self.path is not None


@dataclass(frozen=True, eq=False)
class RunJob:
    """Denoise ``image`` with ``model`` into the layer ``layer``.

    ``noise`` is the synthetic noise that made ``image`` (None for a real photo); the
    classical methods take their noise level from it.
    """

    gen: int
    layer: str
    model: ModelRef
    image: np.ndarray
    clean: np.ndarray | None
    settings: RunSettings
    device: str
    noise: NoiseSpec | None = None

    @property
    def channel(self) -> str:
        return run_channel(self.layer)


@dataclass(frozen=True, eq=False)
class NoiseJob:
    """Apply noise to the clean image (when it is too slow for the GUI thread)."""

    gen: int
    clean: np.ndarray
    kind: str
    level: float
    seed: int
    channel: str = NOISE


@dataclass(frozen=True, eq=False)
class OpenJob:
    """Decode an image file too large to decode on the GUI thread."""

    gen: int
    path: Path
    noisy: bool
    channel: str = OPEN


@dataclass(frozen=True, eq=False)
class DiffJob:
    """The difference heatmap |after - reference| through ``lut`` (a (256, 3) uint8 table)."""

    gen: int
    after: np.ndarray
    reference: np.ndarray
    lut: np.ndarray
    channel: str = DIFF


@dataclass(frozen=True, eq=False)
class MetricsJob:
    """PSNR and SSIM of a layer's ``version`` against the clean image."""

    gen: int
    key: str
    version: int
    image: np.ndarray
    clean: np.ndarray

    @property
    def channel(self) -> str:
        return metrics_channel(self.key)


@dataclass(frozen=True, eq=False)
class SweepJob:
    """PSNR against attention-mask ratio (``kind="attention"``) or noise level (``"noise"``).

    Attributes:
        xs: Ratios in [0, 1) or noise levels.
        models: (model, settings) pairs; each gives one curve.
        clean: Clean crop.
        noisy: Noisy crop (used by the attention sweep).
        noise_kind: Noise type of the level sweep.
        seed: Noise seed of the level sweep.
    """

    gen: int
    kind: str
    xs: tuple[float, ...]
    models: tuple[tuple[ModelRef, RunSettings], ...]
    clean: np.ndarray
    noisy: np.ndarray
    noise_kind: str
    seed: int
    device: str
    channel: str = SWEEP


@dataclass(frozen=True, eq=False)
class AttentionJob:
    """Attention weights of ``pixel`` (y, x) in ``block``."""

    gen: int
    model: ModelRef
    image: np.ndarray
    pixel: tuple[int, int]
    block: int
    settings: RunSettings
    device: str
    channel: str = ATTENTION


# ---------------------------------------------------------------------- what comes back


@dataclass(frozen=True, eq=False)
class JobProgress:
    """Progress of a job: ``done`` of ``total`` steps, and the share done (by pixels for runs)."""

    channel: str
    gen: int
    done: int
    total: int
    message: str
    fraction: float = 0.0


@dataclass(frozen=True, eq=False)
class JobTile:
    gen: int
    layer: str
    box: tuple[int, int, int, int]
    image: np.ndarray


@dataclass(frozen=True, eq=False)
class RunDone:
    gen: int
    layer: str
    model: ModelRef
    image: np.ndarray
    record: RunRecord
    metrics: Metrics | None
    info: str
    display: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class NoiseDone:
    gen: int
    image: np.ndarray
    seconds: float
    display: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class OpenDone:
    """A decoded image: float32 ``image`` and its uint8 ``display`` pixels."""

    gen: int
    path: Path
    noisy: bool
    image: np.ndarray
    display: np.ndarray


@dataclass(frozen=True, eq=False)
class DiffDone:
    """A heatmap (uint8 (H, W, 3)) and the difference its top colour stands for."""

    gen: int
    heat: np.ndarray
    vmax: float


@dataclass(frozen=True, eq=False)
class MetricsDone:
    gen: int
    key: str
    version: int
    metrics: Metrics


@dataclass(frozen=True, eq=False)
class SweepPoint:
    gen: int
    kind: str
    series: str
    x: float
    y: float


@dataclass(frozen=True, eq=False)
class SweepDone:
    gen: int
    kind: str


@dataclass(frozen=True, eq=False)
class AttentionDone:
    gen: int
    view: AttentionView


@dataclass(frozen=True, eq=False)
class JobFailed:
    """A job that raised; ``unloadable`` when its weights file could not be loaded."""

    channel: str
    gen: int
    message: str
    details: str = field(default="")
    unloadable: bool = False


@dataclass(frozen=True, eq=False)
class JobCancelled:
    channel: str
    gen: int
