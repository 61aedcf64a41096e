"""Built-in sample images, so the workbench is useful with no file at hand.

The photographs are the ones scikit-image bundles (no download); the test chart is
generated: flat patches, gradients, fine lines and a zone plate, where denoisers show
whether they keep edges and texture.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

DEFAULT_SAMPLE = "astronaut"


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data

        return getattr(data, name)().astype(np.float32) / np.float32(255.0)

    return load


def make_chart(size: int = 384) -> np.ndarray:
    """A synthetic colour test chart.

    Args:
        size: Side in pixels (at least 32).

    Returns:
        float32 (size, size, 3) RGB in [0, 1].
    """
    if size < 32:
        raise ValueError(f"the chart needs a side of at least 32 pixels, got {size}")
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / np.float32(size)
    img = np.empty((size, size, 3), np.float32)
    # Top half: colour patches over a horizontal grey ramp.
    img[...] = xx[..., None]
    half, quarter = size // 2, size // 4
    palette = np.array(
        [
            [0.8, 0.2, 0.2],
            [0.2, 0.7, 0.3],
            [0.2, 0.3, 0.8],
            [0.9, 0.8, 0.2],
            [0.6, 0.3, 0.7],
            [0.2, 0.7, 0.8],
            [0.95, 0.95, 0.95],
            [0.05, 0.05, 0.05],
        ],
        np.float32,
    )
    step = size // len(palette)
    for i, colour in enumerate(palette):
        img[size // 16 : quarter + size // 16, i * step + 2 : (i + 1) * step - 2] = colour
    # Bottom left: a zone plate (rising spatial frequency).
    r2 = (xx[half:, :half] - 0.25) ** 2 + (yy[half:, :half] - 0.75) ** 2
    img[half:, :half] = (0.5 + 0.5 * np.cos(np.float32(size * 2.2) * r2))[..., None]
    # Bottom right: bars of decreasing width and a vertical colour gradient.
    right = img[half:, half:]
    right[...] = np.stack(
        [
            yy[half:, half:] * 2 - 1,
            1.5 - yy[half:, half:] * 2 + 0.0 * xx[half:, half:],
            np.full_like(xx[half:, half:], 0.5),
        ],
        axis=2,
    ).clip(0, 1)
    x = half
    for width in (8, 6, 4, 3, 2, 1):
        for _ in range(3):
            if x + width >= size:
                break
            img[half + size // 8 : size - size // 8, x : x + width] = 0.0
            x += 2 * width
    # A diagonal edge through the ramp region, where blur shows at once.
    diag = (yy - 0.3 - 0.4 * xx) > 0
    band = (yy > quarter / size + 0.1) & (yy < 0.5)
    img[diag & band] = img[diag & band] * 0.5
    return np.clip(img, 0.0, 1.0)


SAMPLES: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage("astronaut"),
    "chelsea": _skimage("chelsea"),
    "coffee": _skimage("coffee"),
    "rocket": _skimage("rocket"),
    "chart": make_chart,
}


def load_sample(name: str) -> np.ndarray:
    """Load a built-in sample as float32 (H, W, 3) in [0, 1].

    Raises:
        ValueError: For an unknown name (the message lists the known ones).
    """
    if name not in SAMPLES:
        raise ValueError(f"unknown sample {name!r}; choose one of {', '.join(SAMPLES)}")
    return SAMPLES[name]()
