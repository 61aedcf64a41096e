"""The two masks of masked training: the input (pixel) mask and the attention (token) mask."""

from __future__ import annotations

import torch
from torch import Tensor

# Value a dropped input pixel takes, as in the paper's code. With a 1x1 conv_first
# every dropped pixel becomes one constant, learned "mask token" in feature space.
INPUT_MASK_FILL = -0.1


def _check_ratio(ratio: float, name: str) -> float:
    ratio = float(ratio)
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {ratio}")
    return ratio


def draw_keep_maps(num_blocks: int, batch: int, height: int, width: int, drop_ratio: float,
                   generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu") -> Tensor:
    """Draw one Bernoulli keep-map per Swin block (the attention mask).

    Args:
        num_blocks: Number of Swin blocks.
        batch: Batch size (each image gets its own maps).
        height: Padded image height.
        width: Padded image width.
        drop_ratio: Probability that a token is dropped, in [0, 1).
        generator: Source of randomness; must live on ``device``.
        device: Device of the result.

    Returns:
        Float tensor (num_blocks, batch, height, width) of 0 (drop) and 1 (keep).
    """
    drop_ratio = _check_ratio(drop_ratio, "attention-mask drop ratio")
    u = torch.rand((num_blocks, batch, height, width), generator=generator, device=device)
    return (u >= drop_ratio).float()


def apply_input_mask(x: Tensor, drop_ratio: float | Tensor,
                     generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Drop pixels of the network input, as masked training does.

    Every pixel is dropped with probability ``drop_ratio`` (the same decision for
    all channels) and set to ``INPUT_MASK_FILL``.

    Args:
        x: Images (B, C, H, W) in [0, 1].
        drop_ratio: A float in [0, 1), or a tensor (B,) with one ratio per image.
        generator: Source of randomness; must live on ``x.device``.

    Returns:
        (masked images (B, C, H, W), keep-map (B, 1, H, W) of 0/1 in ``x.dtype``).
    """
    if x.dim() != 4:
        raise ValueError(f"expected images (B, C, H, W), got shape {tuple(x.shape)}")
    if isinstance(drop_ratio, Tensor):
        if drop_ratio.numel() != x.shape[0] or not bool(((drop_ratio >= 0) & (drop_ratio < 1)).all()):
            raise ValueError("per-image drop ratios must be one value in [0, 1) per image")
        ratio = drop_ratio.to(device=x.device, dtype=torch.float32).view(-1, 1, 1, 1)
    else:
        ratio = torch.tensor(_check_ratio(drop_ratio, "input-mask drop ratio"), device=x.device)
    b, _, h, w = x.shape
    u = torch.rand((b, 1, h, w), generator=generator, device=x.device)
    keep = (u >= ratio).to(x.dtype)
    masked = x * keep + INPUT_MASK_FILL * (1 - keep)
    return masked, keep
