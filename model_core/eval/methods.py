"""The denoisers ``mdn eval`` compares: our networks, BM3D, non-local means and the noisy input.

Every method is a :class:`Method`: a ``name`` (the column label of the results) and
``denoise(noisy, spec, sigma)`` returning a float32 HWC RGB image in [0, 1]. Build them with
:func:`make_method` from a name (``noisy``, ``bm3d``, ``nlm``, a shipped model ``masked`` or
``baseline``) or a weights file (mdn safetensors or an official ``.pth``; labelled by its stem).

The classical methods need the noise level. ``sigma`` is the noise std on the [0, 1] scale and
comes from :func:`known_sigma`: for Gaussian noise ``sigma / 255`` of the spec; for every other
noise the measured std of ``noisy - clean``. That is an *oracle* setting (it looks at the clean
image), the fairest reading of the paper's "noise-level parameter set from the known level": the
classical methods get the best single level they could be given, while the networks get nothing.
Without a clean image :func:`known_sigma` falls back to a blind estimate from the noisy image.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import cv2
import numpy as np

from model_core.noise import NoiseSpec
from model_core.tiling import default_overlap
from model_core.weights import SHIPPED_NAMES, resolve_weights, training_attn_mask_ratio

if TYPE_CHECKING:
    from model_core.engine import Engine, Progress, RunSettings

__all__ = [
    "CLASSICAL_METHODS",
    "NLM_FACTOR",
    "BM3DMethod",
    "Method",
    "NLMMethod",
    "NetworkMethod",
    "NoisyMethod",
    "known_sigma",
    "make_method",
    "method_label",
]

# NLM filter strength h = hColor = NLM_FACTOR * std (0-255 units). Measured on two 256x256
# Kodak crops (kodim05, kodim23) over gaussian 15/25/50, speckle 0.03, poisson 2.5 and
# correlated 50: 0.7 is best or within 0.3 dB of best in 11 of 12 cases; 0.9-1.0 lose 0.5-2 dB.
NLM_FACTOR = 0.7
# Bounds of h: below 1 NLM does nothing; above 50 it wipes out texture whatever the noise.
NLM_H_RANGE = (1.0, 50.0)
NLM_TEMPLATE_WINDOW = 7
NLM_SEARCH_WINDOW = 21


@runtime_checkable
class Method(Protocol):
    """A denoiser under evaluation."""

    @property
    def name(self) -> str:
        """Label of the method in results (unique within one evaluation)."""
        ...

    def denoise(self, noisy: np.ndarray, spec: NoiseSpec, sigma: float | None = None) -> np.ndarray:
        """Denoise one image.

        Args:
            noisy: (H, W, 3) float32 RGB in [0, 1], 8-bit quantised. Do not modify it.
            spec: The noise that was applied.
            sigma: Known noise std on the [0, 1] scale (see :func:`known_sigma`); methods that
                need it estimate it blindly when None.

        Returns:
            (H, W, 3) float image in [0, 1].
        """
        ...


def known_sigma(spec: NoiseSpec, noisy: np.ndarray, clean: np.ndarray | None = None) -> float:
    """The noise std on the [0, 1] scale that the classical methods are given.

    Args:
        spec: The noise applied.
        noisy: The noisy image.
        clean: The clean image, for the oracle measurement of non-Gaussian noise.

    Returns:
        ``spec.level / 255`` for Gaussian noise; else ``std(noisy - clean)`` when ``clean`` is
        given (oracle), else a blind wavelet estimate from ``noisy`` (scikit-image).
    """
    if spec.kind == "gaussian":
        return spec.level / 255.0
    if clean is not None:
        if clean.shape != noisy.shape:
            raise ValueError(f"clean {clean.shape} and noisy {noisy.shape} shapes differ")
        return float(np.std(noisy.astype(np.float64) - clean.astype(np.float64)))
    from skimage.restoration import estimate_sigma

    return float(estimate_sigma(noisy, channel_axis=-1, average_sigmas=True))


def _sigma_or_estimate(spec: NoiseSpec, noisy: np.ndarray, sigma: float | None) -> float:
    value = known_sigma(spec, noisy) if sigma is None else float(sigma)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"sigma must be a finite non-negative number, got {sigma}")
    return value


@dataclass(frozen=True)
class NoisyMethod:
    """The noisy input itself: the floor every denoiser must beat."""

    name: str = "noisy"

    def denoise(self, noisy: np.ndarray, spec: NoiseSpec, sigma: float | None = None) -> np.ndarray:
        """Return a copy of ``noisy``."""
        return np.array(noisy, dtype=np.float32, copy=True)


@dataclass(frozen=True)
class BM3DMethod:
    """Colour BM3D (``bm3d.bm3d_rgb``, profile ``np``) with ``sigma_psd`` = the known std."""

    name: str = "bm3d"
    profile: str = "np"

    def denoise(self, noisy: np.ndarray, spec: NoiseSpec, sigma: float | None = None) -> np.ndarray:
        """Run BM3D with the known (or, when None, estimated) noise std."""
        import bm3d

        level = max(_sigma_or_estimate(spec, noisy, sigma), 1e-4)  # BM3D divides by it
        out = bm3d.bm3d_rgb(np.asarray(noisy, dtype=np.float64), sigma_psd=level, profile=self.profile)
        return np.clip(out, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class NLMMethod:
    """OpenCV's ``fastNlMeansDenoisingColored`` on the 8-bit image.

    ``h = hColor = factor * std * 255``, clipped to :data:`NLM_H_RANGE`; template window 7,
    search window 21.
    """

    name: str = "nlm"
    factor: float = NLM_FACTOR

    def strength(self, sigma: float) -> float:
        """The filter strength h for a noise std ``sigma`` on the [0, 1] scale."""
        return float(np.clip(self.factor * sigma * 255.0, *NLM_H_RANGE))

    def denoise(self, noisy: np.ndarray, spec: NoiseSpec, sigma: float | None = None) -> np.ndarray:
        """Run NLM with h from the known (or, when None, estimated) noise std."""
        h = self.strength(_sigma_or_estimate(spec, noisy, sigma))
        u8 = np.round(np.clip(noisy, 0.0, 1.0) * 255.0).astype(np.uint8)
        out = cv2.fastNlMeansDenoisingColored(
            np.ascontiguousarray(u8), None, h, h, NLM_TEMPLATE_WINDOW, NLM_SEARCH_WINDOW)
        return out.astype(np.float32) / np.float32(255.0)


@dataclass(frozen=True, eq=False)
class NetworkMethod:
    """A masked SwinIR run through :class:`model_core.engine.Engine` with fixed settings.

    The attention masks are seeded by ``settings.seed``, so a run is reproducible.
    """

    name: str
    engine: Engine
    settings: RunSettings
    progress: Callable[[Progress], None] | None = None

    def denoise(self, noisy: np.ndarray, spec: NoiseSpec, sigma: float | None = None) -> np.ndarray:
        """Denoise with the network (``spec`` and ``sigma`` are not used: it is blind).

        ``progress``, when set, gets the engine's progress after every tile.
        """
        return self.engine.denoise(noisy, self.settings, progress=self.progress).image


# The one table of method names; anything else is a weights file (or a shipped model name).
CLASSICAL_METHODS: dict[str, type[NoisyMethod | BM3DMethod | NLMMethod]] = {
    "noisy": NoisyMethod,
    "bm3d": BM3DMethod,
    "nlm": NLMMethod,
}


def method_label(name_or_path: str | os.PathLike[str]) -> str:
    """The default label of a method: its name, or the stem of its weights file."""
    if isinstance(name_or_path, str) and name_or_path in (*CLASSICAL_METHODS, *SHIPPED_NAMES):
        return name_or_path
    return Path(name_or_path).stem


def make_method(
    name_or_path: str | os.PathLike[str],
    *,
    label: str | None = None,
    attn_mask: float | None = None,
    input_mask: float = 0.0,
    passes: int = 1,
    device: str | None = None,
    tile: int = 0,
    seed: int = 0,
    progress: Callable[[Progress], None] | None = None,
) -> Method:
    """Build a method from its name or a weights file.

    Args:
        name_or_path: ``noisy``, ``bm3d``, ``nlm``, a shipped model (``masked``, ``baseline``)
            or the path of a weights file. Names win over files of the same name.
        label: Name in the results; default: :func:`method_label`.
        attn_mask: Attention mask ratio for networks; None = the model's training value
            (``model_core.weights.training_attn_mask_ratio``: the card's
            ``train_config.attn_mask_ratio``, else the paper's 0.75). Ignored by classical methods.
        input_mask: Share of input pixels networks see dropped (seeded), as in masked training;
            0 (the paper's test setting) keeps them all. For studying the train/test gap.
        passes: Stochastic passes averaged by networks.
        device: Where networks run (``cpu``, ``cuda``, ``auto``; None = CUDA when present).
        tile: Tile side for networks (0 = auto: the whole image, tiled only where the memory
            budget needs it).
        seed: Seed of the networks' attention masks.
        progress: Called by networks with the engine's progress after every tile.

    Raises:
        FileNotFoundError: If a shipped model or the file is missing.
        model_core.network.checkpoint.CheckpointError: If the file is not usable weights.
        ValueError: On bad settings.
    """
    if isinstance(name_or_path, str) and name_or_path in CLASSICAL_METHODS:
        cls = CLASSICAL_METHODS[name_or_path]
        return cls() if label is None else cls(name=label)
    # torch is only needed for networks; keep classical-only runs light.
    from model_core.device import pick_device
    from model_core.engine import Engine, RunSettings

    path = resolve_weights(name_or_path)
    engine = Engine.from_file(path, device=pick_device(device))
    ratio = training_attn_mask_ratio(engine.card) if attn_mask is None else attn_mask
    settings = RunSettings(attn_mask_ratio=ratio, input_mask_ratio=input_mask, passes=passes,
                           seed=seed, tile=tile, overlap=default_overlap(tile))
    return NetworkMethod(label or method_label(name_or_path), engine, settings, progress)
