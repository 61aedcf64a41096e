"""Typed configuration of the masked SwinIR denoiser."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from model_core.configs import ConfigMixin

PAPER_RGB_MEAN = (0.4488, 0.4371, 0.4040)

# Upper bounds, far above the paper's configuration (embed 60, 4 groups of 6 blocks, window 8):
# a config read from a file cannot make the loader build a model of absurd size.
_INT_LIMITS = {"in_chans": 64, "embed_dim": 1024, "window_size": 64, "img_size": 4096}
MAX_GROUPS = 16
MAX_DEPTH = 64
MAX_MLP_RATIO = 16.0


def _checked_int(name: str, value: Any, top: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if not 1 <= value <= top:
        raise ValueError(f"{name} must be in 1..{top}, not {value}")
    return int(value)


@dataclass(frozen=True)
class SwinIRConfig(ConfigMixin):
    """Architecture of a (masked-training) SwinIR denoiser.

    The defaults are the paper's published configuration. Smaller variants are
    the same code with other numbers (see :meth:`lite` and :meth:`small`). Every size is checked
    against bounds far above the paper's (embed_dim <= 1024, at most 16 groups of
    at most 64 blocks, window_size <= 64, mlp_ratio in (0, 16]), so a config read
    from a file cannot make a loader allocate an absurd model.

    Raises:
        TypeError: A field of the wrong type.
        ValueError: A size out of bounds or sizes that do not fit together.

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
        for name in ("depths", "num_heads", "rgb_mean"):
            value = getattr(self, name)
            if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
                raise TypeError(f"{name} must be a list, not {type(value).__name__}")
            object.__setattr__(self, name, tuple(value))
        self._check_sizes()
        self._check_floats()
        if self.resi_connection not in ("1conv", "3conv"):
            raise ValueError(f"resi_connection must be '1conv' or '3conv', not {self.resi_connection!r}")
        if self.resi_connection == "3conv" and self.embed_dim % 4:
            raise ValueError("a '3conv' residual connection needs embed_dim divisible by 4")

    def _check_sizes(self) -> None:
        for name, top in _INT_LIMITS.items():
            object.__setattr__(self, name, _checked_int(name, getattr(self, name), top))
        if self.window_size < 2:
            raise ValueError(f"window_size must be at least 2, not {self.window_size}")
        if not 1 <= len(self.depths) <= MAX_GROUPS or len(self.depths) != len(self.num_heads):
            raise ValueError(f"depths and num_heads must have the same length, 1 to {MAX_GROUPS} "
                             f"(got {len(self.depths)} and {len(self.num_heads)})")
        depths = tuple(_checked_int("each of depths", d, MAX_DEPTH) for d in self.depths)
        heads = tuple(_checked_int("each of num_heads", h, self.embed_dim) for h in self.num_heads)
        for h in heads:
            if self.embed_dim % h:
                raise ValueError(f"embed_dim {self.embed_dim} is not divisible by {h} heads")
        object.__setattr__(self, "depths", depths)
        object.__setattr__(self, "num_heads", heads)

    def _check_floats(self) -> None:
        for name, value in (("mlp_ratio", self.mlp_ratio), ("img_range", self.img_range),
                            *(("rgb_mean", m) for m in self.rgb_mean)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise TypeError(f"{name} must be a finite number, not {value!r}")
        if not 0 < self.mlp_ratio <= MAX_MLP_RATIO or int(self.embed_dim * self.mlp_ratio) < 1:
            raise ValueError(f"mlp_ratio must be in (0, {MAX_MLP_RATIO:g}] and give a hidden width "
                             f"of at least 1, not {self.mlp_ratio}")
        if self.img_range <= 0:
            raise ValueError(f"img_range must be positive, not {self.img_range}")
        if len(self.rgb_mean) != self.in_chans:
            raise ValueError(f"rgb_mean has {len(self.rgb_mean)} values for {self.in_chans} channels")
        object.__setattr__(self, "rgb_mean", tuple(float(m) for m in self.rgb_mean))

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
    def small(cls) -> SwinIRConfig:
        """Half the lite variant's depth, for short CPU budgets: embed 48, 4 groups of 2 blocks."""
        return cls(embed_dim=48, depths=(2, 2, 2, 2), num_heads=(6, 6, 6, 6))

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
