"""Typed configuration of the masked SwinIR denoiser."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from model_core.configs import ConfigMixin

PAPER_RGB_MEAN = (0.4488, 0.4371, 0.4040)


@dataclass(frozen=True)
class SwinIRConfig(ConfigMixin):
    """Architecture of a (masked-training) SwinIR denoiser.

    The defaults are the paper's published configuration. Smaller variants are
    the same code with other numbers (see :meth:`lite`).

    Attributes:
        in_chans: Image channels (3 for RGB).
        embed_dim: Feature width of every Swin block.
        depths: Number of Swin blocks in each residual group (RSTB).
        num_heads: Attention heads in each residual group.
        window_size: Side of the square attention window, in pixels.
        mlp_ratio: Hidden width of the MLP relative to ``embed_dim``.
        resi_connection: Convolution after each group: ``"1conv"`` or ``"3conv"``.
        img_range: Scale applied after the mean shift.
        rgb_mean: Mean subtracted from the input and added back at the end.
        img_size: Training patch size; only sets the shape of the official
            ``attn_mask`` buffers when a state dict is exported in the official layout.
    """

    in_chans: int = 3
    embed_dim: int = 60
    depths: tuple[int, ...] = (6, 6, 6, 6)
    num_heads: tuple[int, ...] = (6, 6, 6, 6)
    window_size: int = 8
    mlp_ratio: float = 2.0
    resi_connection: str = "3conv"
    img_range: float = 1.0
    rgb_mean: tuple[float, ...] = PAPER_RGB_MEAN
    img_size: int = 64

    def __post_init__(self) -> None:
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
        object.__setattr__(self, "num_heads", tuple(int(h) for h in self.num_heads))
        object.__setattr__(self, "rgb_mean", tuple(float(m) for m in self.rgb_mean))
        if len(self.depths) != len(self.num_heads) or not self.depths:
            raise ValueError("depths and num_heads must be non-empty and of equal length")
        for heads in self.num_heads:
            if heads <= 0 or self.embed_dim % heads:
                raise ValueError(f"embed_dim {self.embed_dim} is not divisible by {heads} heads")
        if self.resi_connection not in ("1conv", "3conv"):
            raise ValueError(f"resi_connection must be '1conv' or '3conv', not {self.resi_connection!r}")
        if self.resi_connection == "3conv" and self.embed_dim % 4:
            raise ValueError("a '3conv' residual connection needs embed_dim divisible by 4")
        if self.window_size < 2 or len(self.rgb_mean) != self.in_chans:
            raise ValueError("window_size must be >= 2 and rgb_mean must have in_chans values")

    @property
    def num_blocks(self) -> int:
        """Total number of Swin blocks (24 for the paper's configuration)."""
        return sum(self.depths)

    @classmethod
    def paper(cls) -> SwinIRConfig:
        """The paper's configuration (embed 60, 4 groups of 6 blocks, 6 heads, window 8)."""
        return cls()

    @classmethod
    def lite(cls) -> SwinIRConfig:
        """A smaller variant for CPU-only training: embed 48, 4 groups of 4 blocks."""
        return cls(embed_dim=48, depths=(4, 4, 4, 4), num_heads=(6, 6, 6, 6))

    @classmethod
    def tiny(cls) -> SwinIRConfig:
        """A very small variant for unit tests."""
        return cls(embed_dim=12, depths=(2, 2), num_heads=(2, 2), window_size=4, img_size=16)

    @classmethod
    def from_official(cls, data: dict[str, Any]) -> SwinIRConfig:
        """Translate the official SwinIR keyword arguments (as the fixture's metadata).

        Only denoising settings are supported: ``upscale`` must be 1 and
        ``upsampler`` empty; keys that do not change the architecture are ignored.
        """
        if data.get("upscale", 1) != 1 or data.get("upsampler") not in (None, "", "none"):
            raise ValueError("only denoising SwinIR (upscale 1, no upsampler) is supported")
        if data.get("use_attn_fn", "softmax") != "softmax":
            raise ValueError(f"unsupported attention function {data['use_attn_fn']!r}")
        keys = ("in_chans", "embed_dim", "depths", "num_heads", "window_size",
                "mlp_ratio", "resi_connection", "img_range", "img_size")
        return cls(**{k: data[k] for k in keys if k in data})
