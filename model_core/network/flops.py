"""The network's arithmetic, counted analytically: FLOPs of its matrix products and convolutions."""

from __future__ import annotations

from model_core.network.config import SwinIRConfig


def forward_flops(cfg: SwinIRConfig, height: int, width: int) -> float:
    """Multiply-add FLOPs (2 per MAC) of one forward pass on the padded grid.

    Counts every matrix product and convolution: qkv, q k^T, attn v, proj and the MLP of each
    block, every dropped token included (masking does not skip work), and all convolutions.
    Normalisation, softmax, GELU and additions are not counted.
    """
    ws = cfg.window_size
    hp, wp = -(-height // ws) * ws, -(-width // ws) * ws
    pixels, c, n = hp * wp, cfg.embed_dim, ws * ws
    hidden = int(c * cfg.mlp_ratio)
    block = 2 * (c * 3 * c + 2 * n * c + c * c + 2 * c * hidden)
    if cfg.resi_connection == "3conv":
        q = c // 4
        residual = 2 * (9 * c * q + q * q + 9 * q * c)
    else:
        residual = 2 * 9 * c * c
    per_pixel = (2 * cfg.in_chans * c + cfg.num_blocks * block
                 + (len(cfg.depths) + 1) * residual + 2 * 9 * c * cfg.in_chans)
    return float(per_pixel * pixels)


def training_flops(cfg: SwinIRConfig, patch: int) -> float:
    """FLOPs of one training patch: the forward pass three times (the forward, and the backward's
    two products per layer, for the input's gradient and for the weights')."""
    return 3 * forward_flops(cfg, patch, patch)
