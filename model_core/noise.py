"""The noise zoo: seeded, pure synthetic degradations of clean images.

Every function takes a float RGB image (HWC, or HW grayscale) with values in [0, 1], a noise
level and an integer seed, and returns a new float32 image of the same shape clipped to [0, 1].
The input is never modified. :func:`apply_noise` keeps a grey image grey: an RGB image whose
channels are all equal gets the same noise in every channel. Randomness comes only from
``numpy.random.Generator(PCG64(seed))``, so the same (image, level, seed) always gives the same
result.

The definitions follow ``../shared/reference/NOISE.md``. Two of them are not published by the
paper and are **ours**: :func:`correlated` (Gaussian noise blurred by a 5x5 Gaussian kernel) and
:func:`mixture` (a fixed chain of the other noises).

Typical use::

    spec = NoiseSpec.parse("poisson:2.5")
    noisy = apply_noise(clean, spec, seed=0)  # rounded to 8 bits, as the paper's test images
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real

import cv2
import numpy as np

from model_core.imageio import is_grey

__all__ = [
    "NOISE_TYPES", "NoiseSpec", "NoiseType", "apply_noise", "correlated", "correlation_kernel",
    "default_grid", "gaussian", "jpeg", "mixture", "poisson", "salt_pepper", "speckle",
]  # fmt: skip

NoiseFn = Callable[[np.ndarray, float, int], np.ndarray]

_CORRELATION_KERNEL_SIZE = 5
_CORRELATION_KERNEL_STD = 1.0


# --------------------------------------------------------------------------- validation helpers


def _check_image(img: np.ndarray) -> np.ndarray:
    """Validate a float [0, 1] HW or HWC image and return it as float32 (no copy if possible)."""
    if not isinstance(img, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(img).__name__}")
    if not np.issubdtype(img.dtype, np.floating):
        raise TypeError(
            f"image must be a float array with values in [0, 1], got dtype {img.dtype} "
            "(convert 8-bit images with model_core.imageio.to_float)"
        )
    if img.ndim not in (2, 3) or img.size == 0:
        raise ValueError(f"image must be a non-empty HW or HWC array, got shape {img.shape}")
    lo, hi = float(np.min(img)), float(np.max(img))
    if not (0.0 <= lo and hi <= 1.0):  # also rejects NaN
        raise ValueError(f"image values must lie in [0, 1], got range [{lo}, {hi}]")
    return img.astype(np.float32, copy=False)


def _check_seed(seed: int) -> int:
    """Validate a non-negative integer seed."""
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    return int(seed)


def _check_level(kind: str, level: float) -> float:
    """Validate ``level`` against the valid range of noise ``kind`` and return it as float."""
    info = NOISE_TYPES[kind]
    if isinstance(level, bool) or not isinstance(level, Real):
        raise TypeError(f"{kind} level must be a number, got {type(level).__name__}")
    value = float(level)
    lo, hi = info.valid_range
    if not (lo <= value <= hi):  # also rejects NaN
        raise ValueError(
            f"{kind} level must be in [{lo:g}, {hi:g}] ({info.level_meaning}), got {level}"
        )
    if info.integer and not value.is_integer():
        raise ValueError(f"{kind} level must be an integer ({info.level_meaning}), got {level}")
    return value


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(_check_seed(seed)))


def _finish(out: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] and return float32."""
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


# --------------------------------------------------------------------------- the noises


def gaussian(img: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Add i.i.d. Gaussian noise to every value, channel by channel.

    Args:
        img: Clean float image in [0, 1], HWC or HW.
        sigma: Standard deviation on the 0-255 scale (e.g. 15, 25, 50).
        seed: Seed of the random generator.

    Returns:
        The noisy float32 image, clipped to [0, 1].
    """
    img = _check_image(img)
    sigma = _check_level("gaussian", sigma)
    noise = _rng(seed).standard_normal(img.shape, dtype=np.float32)
    return _finish(img + noise * np.float32(sigma / 255.0))


def correlation_kernel() -> np.ndarray:
    """Return the normalised 5x5 Gaussian kernel (std 1 px) used by :func:`correlated`.

    Returns:
        A float64 (5, 5) array summing to 1.
    """
    taps = cv2.getGaussianKernel(_CORRELATION_KERNEL_SIZE, _CORRELATION_KERNEL_STD, cv2.CV_64F)
    kernel = taps @ taps.T
    return kernel / kernel.sum()


def correlated(img: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Add spatially correlated Gaussian noise (our definition; the paper does not publish one).

    i.i.d. N(0, (sigma/255)^2) noise is drawn per channel and each channel is filtered with the
    normalised 5x5 Gaussian kernel of std 1 px from :func:`correlation_kernel`, without
    re-scaling: the per-pixel std is ``sigma * sqrt(sum(k**2))``, about 0.287 sigma. The noise is
    drawn on a field 2 px larger on every side and filtered 'valid', so its statistics are the
    same at the image border as in the middle.

    Args:
        img: Clean float image in [0, 1], HWC or HW.
        sigma: Std of the white noise before filtering, on the 0-255 scale (e.g. 40-60).
        seed: Seed of the random generator.

    Returns:
        The noisy float32 image, clipped to [0, 1].
    """
    img = _check_image(img)
    sigma = _check_level("correlated", sigma)
    pad = _CORRELATION_KERNEL_SIZE // 2
    shape = (img.shape[0] + 2 * pad, img.shape[1] + 2 * pad, *img.shape[2:])
    white = _rng(seed).standard_normal(shape, dtype=np.float32) * np.float32(sigma / 255.0)
    kernel = correlation_kernel().astype(np.float32)
    channels = [white] if white.ndim == 2 else [white[..., c] for c in range(white.shape[2])]
    filtered = [cv2.filter2D(c, -1, kernel)[pad:-pad, pad:-pad] for c in channels]
    noise = filtered[0] if img.ndim == 2 else np.stack(filtered, axis=2)
    return _finish(img + noise)


def speckle(img: np.ndarray, v: float, seed: int) -> np.ndarray:
    """Add multiplicative speckle noise as MATLAB ``imnoise(I, 'speckle', v)``.

    ``J = I + n * I`` with ``n = sqrt(12 v) * (u - 0.5)``, u uniform on [0, 1), so n has mean 0
    and variance v; drawn independently for every value.

    Args:
        img: Clean float image in [0, 1], HWC or HW.
        v: Variance of the multiplicative noise n (e.g. 0.018-0.040).
        seed: Seed of the random generator.

    Returns:
        The noisy float32 image, clipped to [0, 1].
    """
    img = _check_image(img)
    v = _check_level("speckle", v)
    u = _rng(seed).random(img.shape, dtype=np.float32)
    n = np.float32(math.sqrt(12.0 * v)) * (u - np.float32(0.5))
    return _finish(img + n * img)


def poisson(img: np.ndarray, alpha: float, seed: int) -> np.ndarray:
    """Add scaled Poisson (shot) noise as the paper's notebook does.

    The image is first quantised to 8 bits (``I := round(255 I) / 255``). With
    ``vals = 2 ** ceil(log2(number of distinct values of I))``, ``out = Poisson(I * vals) / vals``
    and ``J = I + alpha * (out - I)``. The noise variance at a pixel is ``alpha**2 * I / vals``.

    Args:
        img: Clean float image in [0, 1], HWC or HW.
        alpha: Scale of the Poisson residual (e.g. 2-3.5; 1 is plain Poisson noise).
        seed: Seed of the random generator.

    Returns:
        The noisy float32 image, clipped to [0, 1].
    """
    img = _check_image(img)
    alpha = _check_level("poisson", alpha)
    codes = np.round(img * np.float32(255.0)).astype(np.uint8)
    distinct = np.count_nonzero(np.bincount(codes.ravel(), minlength=256))
    quantised = codes / 255.0
    vals = 2.0 ** math.ceil(math.log2(distinct))
    out = _rng(seed).poisson(quantised * vals) / vals
    return _finish(quantised + alpha * (out - quantised))


def salt_pepper(img: np.ndarray, d: float, seed: int) -> np.ndarray:
    """Add salt & pepper noise as MATLAB ``imnoise(I, 'salt & pepper', d)`` on the RGB array.

    Each value (each channel of each pixel, independently) becomes 0 with probability d/2 and 1
    with probability d/2, which gives coloured dots.

    Args:
        img: Clean float image in [0, 1], HWC or HW.
        d: Density: the expected fraction of values replaced (e.g. 0.002, 0.02).
        seed: Seed of the random generator.

    Returns:
        The noisy float32 image.
    """
    img = _check_image(img)
    d = _check_level("salt-pepper", d)
    u = _rng(seed).random(img.shape)
    out = img.copy()
    out[u < d / 2.0] = 0.0
    out[(u >= d / 2.0) & (u < d)] = 1.0
    return _finish(out)


def mixture(img: np.ndarray, level: float, seed: int) -> np.ndarray:
    """Apply a mixture of noises (our composition; the paper does not publish its own).

    Level L applies, in this order: Gaussian sigma = 5 L, speckle v = 0.006 L, Poisson
    alpha = 0.5 L, salt & pepper d = 0.001 L. Each stage uses its own seed derived from ``seed``
    with ``numpy.random.SeedSequence``, and its result is clipped to [0, 1].

    Args:
        img: Clean float image in [0, 1], HWC or HW.
        level: Integer level 1-5.
        seed: Seed from which the four stage seeds are derived.

    Returns:
        The noisy float32 image, clipped to [0, 1].
    """
    img = _check_image(img)
    level = _check_level("mixture", level)
    stage_seeds = np.random.SeedSequence(_check_seed(seed)).generate_state(4, dtype=np.uint64)
    out = gaussian(img, 5.0 * level, int(stage_seeds[0]))
    out = speckle(out, 0.006 * level, int(stage_seeds[1]))
    out = poisson(out, 0.5 * level, int(stage_seeds[2]))
    return salt_pepper(out, 0.001 * level, int(stage_seeds[3]))


def jpeg(img: np.ndarray, quality: float, seed: int = 0) -> np.ndarray:
    """Apply JPEG compression artefacts with an OpenCV encode/decode round trip.

    The image is rounded to 8 bits, encoded at ``quality`` and decoded. Deterministic.

    Args:
        img: Clean float image in [0, 1]: HWC RGB, HWx1 or HW grayscale.
        quality: JPEG quality, integer 1-100 (lower is stronger compression).
        seed: Ignored; present so that every noise function has the same signature.

    Returns:
        The decoded float32 image (a multiple of 1/255), same shape as ``img``.
    """
    img = _check_image(img)
    quality = _check_level("jpeg", quality)
    if img.ndim == 3 and img.shape[2] not in (1, 3):
        raise ValueError(f"jpeg needs 1 or 3 channels, got shape {img.shape}")
    u8 = np.round(img * 255.0).astype(np.uint8)
    if u8.ndim == 3 and u8.shape[2] == 3:
        u8 = cv2.cvtColor(u8, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV failed to encode the image as JPEG")
    flag = cv2.IMREAD_COLOR if img.ndim == 3 and img.shape[2] == 3 else cv2.IMREAD_GRAYSCALE
    dec = cv2.imdecode(buf, flag)
    if dec.ndim == 3:
        dec = cv2.cvtColor(dec, cv2.COLOR_BGR2RGB)
    return (dec.astype(np.float32) / np.float32(255.0)).reshape(img.shape)


# --------------------------------------------------------------------------- typed catalogue


@dataclass(frozen=True)
class NoiseType:
    """Description of one noise type of the zoo.

    Attributes:
        name: Name used on the command line and in :class:`NoiseSpec` (e.g. ``"salt-pepper"``).
        func: The noise function, ``func(img, level, seed) -> noisy``.
        description: One-line description.
        level_meaning: What the level means (e.g. ``"sigma on the 0-255 scale"``).
        valid_range: Inclusive (min, max) of the level.
        paper_levels: The levels of the paper's evaluation (empty if none).
        default_level: Level used when none is given.
        integer: Whether the level must be an integer.
    """

    name: str
    func: NoiseFn
    description: str
    level_meaning: str
    valid_range: tuple[float, float]
    paper_levels: tuple[float, ...]
    default_level: float
    integer: bool = False


NOISE_TYPES: dict[str, NoiseType] = {
    t.name: t
    for t in (
        NoiseType(name="gaussian", func=gaussian, description="additive white Gaussian noise",
                  level_meaning="sigma on the 0-255 scale", valid_range=(0.0, 100.0),
                  paper_levels=(15.0, 25.0, 50.0), default_level=15.0),
        NoiseType(name="correlated", func=correlated,
                  description="spatially correlated Gaussian noise (ours: white noise, 5x5 blur)",
                  level_meaning="sigma of the white noise before blurring, on the 0-255 scale",
                  valid_range=(0.0, 100.0), paper_levels=(40.0, 45.0, 50.0, 55.0, 60.0),
                  default_level=50.0),
        NoiseType(name="speckle", func=speckle,
                  description="multiplicative uniform noise (MATLAB imnoise 'speckle')",
                  level_meaning="variance v of the multiplicative noise", valid_range=(0.0, 0.1),
                  paper_levels=(0.018, 0.024, 0.030, 0.036, 0.040), default_level=0.024),
        NoiseType(name="poisson", func=poisson,
                  description="scaled Poisson shot noise (the paper's notebook)",
                  level_meaning="scale alpha of the Poisson residual", valid_range=(0.0, 5.0),
                  paper_levels=(2.0, 2.5, 3.0, 3.5), default_level=2.5),
        NoiseType(name="salt-pepper", func=salt_pepper,
                  description="salt & pepper noise on every RGB value (MATLAB imnoise)",
                  level_meaning="density d, the fraction of values set to 0 or 1",
                  valid_range=(0.0, 0.5), paper_levels=(0.002, 0.02), default_level=0.02),
        NoiseType(name="mixture", func=mixture,
                  description="ours: Gaussian 5L, speckle 0.006L, Poisson 0.5L, s&p 0.001L",
                  level_meaning="integer level L", valid_range=(1.0, 5.0),
                  paper_levels=(1.0, 2.0, 3.0, 4.0, 5.0), default_level=2.0, integer=True),
        NoiseType(name="jpeg", func=jpeg,
                  description="JPEG compression artefacts (OpenCV encode/decode)",
                  level_meaning="integer JPEG quality", valid_range=(1.0, 100.0),
                  paper_levels=(10.0, 20.0, 30.0, 50.0, 70.0, 90.0), default_level=30.0,
                  integer=True),
    )
}  # fmt: skip


def _canonical_kind(kind: str) -> str:
    """Return the canonical name of a noise type, or raise ValueError listing the valid ones."""
    if not isinstance(kind, str):
        raise TypeError(f"noise kind must be a str, got {type(kind).__name__}")
    name = kind.strip().lower().replace("_", "-")
    if name not in NOISE_TYPES:
        raise ValueError(f"unknown noise type {kind!r}; valid types: {', '.join(NOISE_TYPES)}")
    return name


@dataclass(frozen=True)
class NoiseSpec:
    """A noise type and its level, e.g. ``NoiseSpec("poisson", 2.5)`` or ``"poisson:2.5"``.

    The kind is normalised (``"Salt_Pepper"`` becomes ``"salt-pepper"``) and the level checked
    against the type's valid range at construction, so an existing spec is always valid.

    Attributes:
        kind: Name of the noise type, a key of :data:`NOISE_TYPES`.
        level: Noise level; its meaning depends on the type (see ``NOISE_TYPES[kind]``).
    """

    kind: str
    level: float

    def __post_init__(self) -> None:
        kind = _canonical_kind(self.kind)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "level", _check_level(kind, self.level))

    @classmethod
    def parse(cls, text: str) -> NoiseSpec:
        """Parse ``"TYPE:LEVEL"`` (or ``"TYPE"`` for the type's default level).

        Args:
            text: e.g. ``"gaussian:25"``, ``"salt-pepper:0.02"``, ``"jpeg"``.

        Returns:
            The validated spec.

        Raises:
            ValueError: If the text is malformed, the type unknown or the level out of range.
        """
        if not isinstance(text, str):
            raise TypeError(f"noise spec must be a str, got {type(text).__name__}")
        kind, sep, level_text = text.partition(":")
        kind = _canonical_kind(kind)
        if not sep:
            return cls(kind, NOISE_TYPES[kind].default_level)
        try:
            level = float(level_text)
        except ValueError:
            raise ValueError(
                f"bad noise level {level_text!r} in {text!r}; expected TYPE:NUMBER, "
                "e.g. 'poisson:2.5'"
            ) from None
        return cls(kind, level)

    def __str__(self) -> str:
        level = str(int(self.level)) if self.level.is_integer() else repr(self.level)
        return f"{self.kind}:{level}"


def apply_noise(
    img: np.ndarray, spec: NoiseSpec | str, seed: int, quantize: bool = True
) -> np.ndarray:
    """Apply the noise described by ``spec`` to a clean image.

    Args:
        img: Clean float image in [0, 1], HWC RGB (or HW grayscale).
        spec: A :class:`NoiseSpec` or its text form ``"TYPE:LEVEL"``.
        seed: Seed of the random generator (non-negative int).
        quantize: Round the noisy result to 8 bits (``round(255 x) / 255``), as the paper's
            saved test images are.

    Returns:
        The noisy float32 image, same shape as ``img``, in [0, 1]. A grey image stays grey:
        when the channels of ``img`` are all equal (a grey file as :func:`read_image` gives it,
        replicated to RGB), the noise is drawn once, on the grey plane, and the same noisy
        plane is returned in every channel. The noise functions themselves draw every value
        independently; called on a three-channel image they would tint a grey one.
    """
    if isinstance(spec, str):
        spec = NoiseSpec.parse(spec)
    elif not isinstance(spec, NoiseSpec):
        raise TypeError(f"spec must be a NoiseSpec or str, got {type(spec).__name__}")
    func = NOISE_TYPES[spec.kind].func
    if isinstance(img, np.ndarray) and img.ndim == 3 and img.shape[2] > 1 and is_grey(img):
        plane = func(img[..., 0], spec.level, seed)
        noisy = np.repeat(plane[..., None], img.shape[2], axis=2)
    else:
        noisy = func(img, spec.level, seed)
    if quantize:
        noisy = np.round(noisy * np.float32(255.0)) / np.float32(255.0)
    return noisy.astype(np.float32, copy=False)


def default_grid() -> list[NoiseSpec]:
    """Return the paper's evaluation grid: every paper level of every type except JPEG.

    Returns:
        Specs for gaussian 15, 25, 50; correlated 40-60; speckle 0.018-0.040; poisson 2-3.5;
        salt-pepper 0.002, 0.02; mixture 1-5, in that order.
    """
    return [
        NoiseSpec(name, level)
        for name, info in NOISE_TYPES.items()
        if name != "jpeg"
        for level in info.paper_levels
    ]
