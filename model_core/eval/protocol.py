"""The paper's evaluation protocol: data sets x noises x methods, with identical noisy inputs.

For every clean image and noise spec, one noisy image is drawn, quantised to 8 bits, and handed
(as a fresh copy) to every method. Its seed depends only on the run's seed, the image's file name
and the spec (:func:`noise_seed`), never on the method or the order of the grid, so any two runs
and any two methods see byte-identical inputs. Clean images are rounded to 8 bits on reading and
every output before PSNR/SSIM (RGB, full image, no border crop); a row holds the mean over images.
Grey images (equal channels) get grey noise and are scored as grey, on the mean of the channels
a method returns.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model_core.eval.methods import Method, known_sigma
from model_core.imageio import ImageReadError, is_grey, read_image, to_grey
from model_core.metrics import psnr, ssim, to_uint8_float
from model_core.noise import NoiseSpec, apply_noise

__all__ = [
    "IMAGE_SUFFIXES",
    "EvalCancelled",
    "EvalProgress",
    "Row",
    "SkippedImageWarning",
    "evaluate",
    "list_images",
    "noise_seed",
]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"})


class SkippedImageWarning(UserWarning):
    """An image file could not be read and was left out of the evaluation."""


class EvalCancelled(Exception):
    """Raised by :func:`evaluate` when its ``cancel`` callback returns True."""


@dataclass(frozen=True)
class Row:
    """The result of one method on one noise of one data set.

    Attributes:
        dataset: The data set's folder name.
        noise: Noise type (e.g. ``"poisson"``).
        level: Noise level.
        method: The method's name.
        psnr: Mean PSNR in dB over the images (RGB, or grey for grey images; 8-bit, full image);
            NaN without images.
        ssim: Mean SSIM over the images; NaN without images.
        n_images: Images that were read and scored.
    """

    dataset: str
    noise: str
    level: float
    method: str
    psnr: float
    ssim: float
    n_images: int

    @property
    def spec(self) -> NoiseSpec:
        """The noise as a spec."""
        return NoiseSpec(self.noise, self.level)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dictionary; NaN becomes None."""
        data = asdict(self)
        for key in ("psnr", "ssim"):
            if not math.isfinite(data[key]):
                data[key] = None
        return data


@dataclass(frozen=True)
class EvalProgress:
    """One (image, spec, method) evaluation done, or skipped with its image."""

    done: int
    total: int
    dataset: str
    image: str
    spec: NoiseSpec
    method: str


def list_images(folder: str | Path, limit: int | None = None) -> list[Path]:
    """Image files of ``folder`` (by suffix, hidden files excluded), sorted by name.

    Args:
        folder: The data set's folder (not searched recursively).
        limit: Keep the first ``limit`` files; None keeps all. Files that later fail to
            read still count towards the limit, so a limit always means the same files.

    Raises:
        FileNotFoundError: If ``folder`` does not exist.
        NotADirectoryError: If ``folder`` is a file.
        ValueError: If it holds no image files, or ``limit`` is not positive.
    """
    folder = Path(folder)
    if folder.is_file():
        raise NotADirectoryError(f"{folder} is a file, not a data set folder")
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such data set folder")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive int or None, got {limit!r}")
    files = sorted(
        (p for p in folder.iterdir()
         if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()),
        key=lambda p: p.name,
    )
    if not files:
        raise ValueError(f"{folder}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files[:limit]


def noise_seed(seed: int, image_name: str, spec: NoiseSpec) -> int:
    """The seed of the noise drawn for one image: a hash of (seed, file name, spec).

    Independent of the method, the data set's location and the order of the grid.
    """
    key = f"mdn-eval/1|{int(seed)}|{image_name}|{spec}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1


class _Scores:
    """Per-image PSNR/SSIM lists for every (dataset, spec, method) cell."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, NoiseSpec, str], list[tuple[float, float]]] = {}

    def add(self, dataset: str, spec: NoiseSpec, method: str, pair: tuple[float, float]) -> None:
        self.cells.setdefault((dataset, spec, method), []).append(pair)

    def row(self, dataset: str, spec: NoiseSpec, method: str) -> Row:
        pairs = self.cells.get((dataset, spec, method), [])
        mean_psnr = float(np.mean([p for p, _ in pairs])) if pairs else math.nan
        mean_ssim = float(np.mean([s for _, s in pairs])) if pairs else math.nan
        return Row(dataset, spec.kind, spec.level, method, mean_psnr, mean_ssim, len(pairs))


def _check_grid(datasets: Sequence[Path], methods: Sequence[Method], specs: Sequence[NoiseSpec]) -> None:
    for label, names in (("data set folder", [d.name for d in datasets]),
                         ("method", [m.name for m in methods]), ("noise spec", [str(s) for s in specs])):
        if not names:
            raise ValueError(f"evaluate needs at least one {label}")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"{label} names must be unique; repeated: {', '.join(repeated)}")
    for spec in specs:
        if not isinstance(spec, NoiseSpec):
            raise TypeError(f"specs must be NoiseSpec objects, got {type(spec).__name__}")


def _warn_skip(path: Path, reason: str) -> None:
    warnings.warn(f"skipping {path}: {reason}", SkippedImageWarning, stacklevel=3)


def evaluate(
    datasets: Sequence[str | Path],
    methods: Sequence[Method],
    specs: Sequence[NoiseSpec],
    limit: int | None = None,
    seed: int = 0,
    progress: Callable[[EvalProgress], None] | None = None,
    *,
    on_skip: Callable[[Path, str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> list[Row]:
    """Run every method on every noise of every image of every data set.

    Args:
        datasets: Folders of clean images; a data set is named by its folder name.
        methods: The methods (unique names).
        specs: The noises (e.g. :func:`model_core.noise.default_grid`).
        limit: Use the first ``limit`` files of each folder, sorted by name; None = all.
        seed: Base seed of the noise (see :func:`noise_seed`).
        progress: Called after each (image, spec, method), and for each one an unreadable
            image skips; ``done`` reaches ``total`` = files x specs x methods.
        on_skip: Called with (path, reason) for an unreadable image; default: a
            :class:`SkippedImageWarning`.
        cancel: Polled before every method call; True raises :class:`EvalCancelled`.

    Returns:
        One row per (dataset, spec, method), in that nesting order and the given orders.
    """
    folders = [Path(d) for d in datasets]
    methods, specs = list(methods), list(specs)
    _check_grid(folders, methods, specs)
    files = {folder.name: list_images(folder, limit) for folder in folders}
    total = sum(len(f) for f in files.values()) * len(specs) * len(methods)
    counter = _Counter(total, progress)
    scores = _Scores()
    for dataset, paths in files.items():
        for path in paths:
            try:
                clean = to_uint8_float(read_image(path).rgb)  # grey files: three equal channels
            except ImageReadError as exc:
                (on_skip or _warn_skip)(path, str(exc))
                counter.skip(dataset, path.name, specs, methods)
                continue
            _score_image(clean, dataset, path.name, specs, methods, seed, scores, counter, cancel)
    return [scores.row(d, s, m.name) for d in files for s in specs for m in methods]


class _Counter:
    """Counts finished evaluations and reports them to a progress callback."""

    def __init__(self, total: int, callback: Callable[[EvalProgress], None] | None) -> None:
        self.done, self.total, self.callback = 0, total, callback

    def step(self, dataset: str, image: str, spec: NoiseSpec, method: str) -> None:
        self.done += 1
        if self.callback is not None:
            self.callback(EvalProgress(self.done, self.total, dataset, image, spec, method))

    def skip(self, dataset: str, image: str, specs: list[NoiseSpec], methods: list[Method]) -> None:
        for spec in specs:
            for method in methods:
                self.step(dataset, image, spec, method.name)


def _score_image(clean: np.ndarray, dataset: str, image: str, specs: list[NoiseSpec],
                 methods: list[Method], seed: int, scores: _Scores, counter: _Counter,
                 cancel: Callable[[], bool] | None) -> None:
    """Score every method on every noise of one clean image.

    A grey image gets grey noise (:func:`apply_noise`), is given to the methods as three equal
    channels, and is scored as grey: on the mean of the channels a method returns.
    """
    grey = is_grey(clean)
    reference = to_grey(clean) if grey else clean
    for spec in specs:
        noisy = apply_noise(clean, spec, noise_seed(seed, image, spec), quantize=True)
        sigma = known_sigma(spec, noisy, clean)
        for method in methods:
            if cancel is not None and cancel():
                raise EvalCancelled(f"cancelled at {dataset}/{image}, {spec}, {method.name}")
            # A fresh copy: a method that writes into its input cannot change the next one's.
            out = method.denoise(noisy.copy(), spec, sigma)
            if out.shape != clean.shape:
                raise ValueError(f"method {method.name!r} returned shape {out.shape} for an "
                                 f"input of shape {clean.shape}")
            if not np.isfinite(out).all():  # the noisy input is finite: the method is at fault
                raise ValueError(f"method {method.name!r} gave NaN or infinite values for "
                                 f"{dataset}/{image}, whose noisy input is finite; stopping")
            out8 = to_uint8_float(to_grey(out) if grey else out)
            scores.add(dataset, spec, method.name, (psnr(out8, reference), ssim(out8, reference)))
            counter.step(dataset, image, spec, method.name)
