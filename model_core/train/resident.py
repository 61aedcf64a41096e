"""The training set resident on the device, and batches drawn there from (seed, iteration).

The CPU path (:mod:`model_core.train.data`) decodes crops in DataLoader workers and sends each
batch to the device. On a GPU that costs a host-device copy and a synchronisation per step,
and the workers cannot keep up with tens of thousands of patches a second. Here the images are
decoded once into one packed uint8 tensor on the device, and every random choice of a batch
(image, crop position, flip/rotation, noise, input mask, attention keep-maps) is drawn on the
device from a generator seeded by (seed, iteration): a batch depends on nothing that came
before it, so a resumed run sees exactly the batches of an uninterrupted one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from model_core.network.masks import INPUT_MASK_FILL, draw_keep_maps
from model_core.train.config import TrainConfig
from model_core.train.data import _imread_quietly, augment, list_images
from model_core.train.loop import step_generator

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResidentImages:
    """Clean training images packed in one uint8 tensor on a device.

    Attributes:
        pixels: (total,) uint8, every image's (H, W, 3) RGB pixels in row-major order, one
            after the other.
        offsets: (N,) int64, where each image starts in ``pixels``.
        sizes: (N, 2) int64, each image's (height, width).
        names: The file of each image.
    """

    pixels: Tensor
    offsets: Tensor
    sizes: Tensor
    names: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.names)

    @property
    def device(self) -> torch.device:
        return self.pixels.device


def load_resident(folder: str | Path, patch: int, device: torch.device) -> ResidentImages:
    """Decode every usable image of ``folder`` once and move them to ``device``.

    Unreadable images, and images with a side under ``patch``, are skipped with a warning,
    as :class:`~model_core.train.data.PatchDataset` skips them.

    Raises:
        FileNotFoundError: No such folder, or no images in it.
        ValueError: No usable image.
    """
    files = list_images(folder)
    arrays, names = [], []
    for path in files:
        img = _imread_quietly(path)
        if img is None or min(img.shape[:2]) < patch:
            LOG.warning("skipping training image %s: unreadable or smaller than %d px", path, patch)
            continue
        arrays.append(np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB)))
        names.append(path.name)
    if not arrays:
        raise ValueError(f"{Path(folder)}: no usable training image: all {len(files)} are unreadable "
                         f"or smaller than {patch} px")
    return pack_images(arrays, names, device)


def pack_images(arrays: list[np.ndarray], names: list[str], device: torch.device) -> ResidentImages:
    """Pack (H, W, 3) uint8 RGB images, of any sizes, into one tensor on ``device``."""
    lengths = [a.size for a in arrays]
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    pixels = torch.from_numpy(np.concatenate([a.reshape(-1) for a in arrays]))
    sizes = torch.tensor([a.shape[:2] for a in arrays], dtype=torch.int64)
    return ResidentImages(pixels.to(device), torch.from_numpy(offsets).to(device), sizes.to(device),
                          tuple(names))


def dihedral_tables(patch: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Source row and column, in the crop, of every pixel of each of the 8 flips/rotations.

    Built with :func:`~model_core.train.data.augment` itself on coordinate grids, so mode ``m``
    here is exactly mode ``m`` of the CPU path.

    Returns:
        (rows, cols), int64 tensors (8, patch, patch).
    """
    grid_r, grid_c = np.meshgrid(np.arange(patch), np.arange(patch), indexing="ij")
    rows = np.stack([augment(grid_r, m) for m in range(8)])
    cols = np.stack([augment(grid_c, m) for m in range(8)])
    return torch.from_numpy(rows.copy()).to(device), torch.from_numpy(cols.copy()).to(device)


@dataclass(frozen=True)
class ResidentBatch:
    """One iteration's tensors, all on the device.

    Attributes:
        clean: (B, 3, P, P) clean patches in [0, 1].
        noisy: (B, 3, P, P) the patches with Gaussian noise, clipped to [0, 1] (the baseline's
            input).
        masked: The masked model's input: ``noisy`` with its input mask (``noisy`` itself for a
            run without one).
        keep_maps: (num_blocks, B, Hp, Wp) attention keep-maps of the masked model, or None.
    """

    clean: Tensor
    noisy: Tensor
    masked: Tensor
    keep_maps: Tensor | None


class BatchMaker:
    """Draws batch ``iteration`` of a run on the device (see the module docstring).

    Args:
        images: The resident training set.
        cfg: The run's configuration (the masked model's in a paired run): patch, batch,
            sigma, masks and their schedules, seed.
    """

    def __init__(self, images: ResidentImages, cfg: TrainConfig) -> None:
        self.images = images
        self.cfg = cfg
        self.rows, self.cols = dihedral_tables(cfg.patch, images.device)
        self.channels = torch.arange(3, device=images.device)
        net = cfg.model_config()
        self.num_blocks = net.num_blocks
        self.padded = -(-cfg.patch // net.window_size) * net.window_size

    def crops(self, gen: torch.Generator, batch: int) -> Tensor:
        """(B, 3, P, P) clean float patches: random image, position and flip/rotation each."""
        img, dev, p = self.images, self.images.device, self.cfg.patch
        index = torch.randint(img.count, (batch,), generator=gen, device=dev)
        h, w = img.sizes[index, 0], img.sizes[index, 1]
        # A uniform draw scaled to each image's own range of positions (the ranges differ).
        y = (torch.rand(batch, generator=gen, device=dev) * (h - p + 1)).long().clamp_(max=h - p)
        x = (torch.rand(batch, generator=gen, device=dev) * (w - p + 1)).long().clamp_(max=w - p)
        mode = torch.randint(8, (batch,), generator=gen, device=dev)
        src_r = y[:, None, None] + self.rows[mode]
        src_c = x[:, None, None] + self.cols[mode]
        pix = img.offsets[index][:, None, None] + (src_r * w[:, None, None] + src_c) * 3
        values = img.pixels.take(pix[..., None] + self.channels)  # (B, P, P, 3) uint8
        return values.permute(0, 3, 1, 2).contiguous().float() / 255.0

    def __call__(self, iteration: int) -> ResidentBatch:
        """Batch ``iteration`` (0-based): a pure function of (seed, iteration)."""
        gen = step_generator(self.cfg, iteration, 0, self.images.device)
        clean = self.crops(gen, self.cfg.batch)
        noise = torch.randn(clean.shape, generator=gen, device=clean.device) * (self.cfg.sigma / 255)
        noisy = (clean + noise).clamp_(0, 1)
        masked = masked_input(noisy, self.cfg, gen, iteration)
        keeps = None
        if self.cfg.attn_mask_ratio > 0:
            keeps = draw_keep_maps(self.num_blocks, clean.shape[0], self.padded, self.padded,
                                   self.cfg.attn_mask_ratio, gen, clean.device)
        return ResidentBatch(clean, noisy, masked, keeps)


def masked_input(noisy: Tensor, cfg: TrainConfig, gen: torch.Generator, iteration: int) -> Tensor:
    """The input mask of :func:`~model_core.train.loop.make_inputs`, without reading anything back.

    The same draws from ``gen`` in the same order (drop ratios, dense-share jitter, the pixel
    draws) and the same values: dropped pixels take ``INPUT_MASK_FILL`` in every channel. The
    dense share's stochastic rounding stays on the device, where ``make_inputs`` reads the
    jitter back (a synchronisation per step on a GPU).
    """
    if cfg.input_mask is None:
        return noisy
    b, dev = noisy.shape[0], noisy.device
    low, high = (round(v * 100) for v in cfg.input_mask)
    ratios = torch.randint(low, high + 1, (b,), generator=gen, device=dev).float() / 100
    ramp = cfg.mask_ramp_at(iteration)
    if ramp < 1:
        ratios = cfg.mask_ramp_start + (ratios - cfg.mask_ramp_start) * ramp
    if cfg.dense_share or cfg.dense_final:  # drawn whenever the run has a dense share
        jitter = torch.rand((), generator=gen, device=dev)
        dense = (cfg.dense_share_at(iteration) * b + jitter).floor().clamp_(max=b)
        ratios = torch.where(torch.arange(b, device=dev) < dense, 0.0, ratios)
    u = torch.rand((b, 1, *noisy.shape[2:]), generator=gen, device=dev)
    keep = (u >= ratios.view(-1, 1, 1, 1)).to(noisy.dtype)
    return noisy * keep + INPUT_MASK_FILL * (1 - keep)
