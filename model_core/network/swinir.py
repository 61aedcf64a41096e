"""SwinIR for denoising with the attention mask of masked training.

Module and parameter names follow the official SwinIR code so that official
state dicts load one to one; features are kept channels-last, (B, H, W, C).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model_core.network.attention import (
    WindowAttention,
    WindowBorder,
    merge_windows,
    partition_windows,
    shift_mask_kinds,
    window_order,
)
from model_core.network.config import SwinIRConfig
from model_core.network.masks import draw_keep_maps

# Tokens per chunk of the inference path: the chunk's logits, qkv and MLP activations stay
# in the CPU's cache (measured best between 1k and 8k tokens on the development machine).
INFERENCE_CHUNK_TOKENS = 4096


@dataclass(frozen=True)
class ProbeRequest:
    """What a forward call should keep for inspection, besides the output.

    Attributes:
        keep_map_blocks: Global block indices (0..num_blocks-1) whose keep-maps to return.
        attention_blocks: Block indices for which to return attention weights.
        query_pixels: (y, x) pixels of the input image; for each, the weights of its
            token over its window are returned for every block in ``attention_blocks``.
        feature_groups: Residual groups (0..len(depths)-1) whose output features to return:
            the group's blocks, its closing convolution and its skip connection, before the
            next group (the last group's output is what the final LayerNorm and
            ``conv_after_body`` read, the place the paper plots its feature histograms).
    """

    keep_map_blocks: tuple[int, ...] = ()
    attention_blocks: tuple[int, ...] = ()
    query_pixels: tuple[tuple[int, int], ...] = ()
    feature_groups: tuple[int, ...] = ()


@dataclass
class AttentionProbe:
    """Attention of one query pixel over its window in one block.

    Attributes:
        block: Global block index.
        pixel: The query (y, x).
        weights: (B, nH, ws, ws) softmax weights of the query over the window's tokens.
        key_rows: (ws, ws) image row of each key token (on the padded grid).
        key_cols: (ws, ws) image column of each key token (on the padded grid).
    """

    block: int
    pixel: tuple[int, int]
    weights: Tensor
    key_rows: Tensor
    key_cols: Tensor


@dataclass
class ProbeResult:
    """What a forward call kept for inspection (see :class:`ProbeRequest`).

    Attributes:
        keep_maps: Block index to its (B, H, W) keep-map (1 keep).
        attention: The attention of each query pixel in each requested block.
        features: Residual group index to its output features (B, C, H, W) on the input's
            grid (padding cropped off): a detached view of the residual stream, not a copy,
            in the stream's dtype (bf16 under autocast).
    """

    keep_maps: dict[int, Tensor] = field(default_factory=dict)
    attention: list[AttentionProbe] = field(default_factory=list)
    features: dict[int, Tensor] = field(default_factory=dict)


class Mlp(nn.Module):
    """Two-layer GELU MLP (official names ``fc1``/``fc2``)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwinBlock(nn.Module):
    """One Swin transformer block with an optional token keep-map.

    Args:
        dim: Feature width.
        num_heads: Attention heads.
        window_size: Window side.
        shift: Cyclic shift (0 or window_size // 2).
        mlp_ratio: MLP hidden width relative to ``dim``.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int, shift: int,
                 mlp_ratio: float) -> None:
        super().__init__()
        self.window_size = window_size
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def windows(self, x: Tensor, keep: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """Normalise, apply the keep-map, shift and partition (B, H, W, C) features."""
        y = self.norm1(x)
        if keep is not None:
            y = y * keep.to(y.dtype)[..., None]
        mask = None
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
            mask = shift_mask_kinds(self.window_size, self.shift, x.device)
        return partition_windows(y, self.window_size), mask

    def forward(self, x: Tensor, keep: Tensor | None = None) -> Tensor:
        """Apply the block.

        Args:
            x: (B, H, W, C) features, H and W multiples of the window size.
            keep: (B, H, W) keep-map (1 keep, 0 drop) or None for no attention mask.

        Returns:
            (B, H, W, C).
        """
        if not torch.is_grad_enabled() and x.device.type == "cpu":
            return self.infer(x, keep)
        windows, mask = self.windows(x, keep)
        y = merge_windows(self.attn(windows, mask), self.window_size)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + y
        return x + self.mlp(self.norm2(x))

    def infer(self, x: Tensor, keep: Tensor | None = None) -> Tensor:
        """Inference-only :meth:`forward` (no autograd): the whole block in window layout.

        Attention, residuals and the MLP commute with the token permutation of the shift
        and the window partition, so the block runs on window-ordered tokens in chunks of
        whole window rows, updating them in place; the map is permuted by one gather on the
        way in and one on the way out, and no other intermediate is larger than a chunk.
        """
        ws, s = self.window_size, self.shift
        b, h, w, c = x.shape
        nwh, nww, n = h // ws, w // ws, ws * ws
        order, inverse = window_order(h, w, ws, s, x.device)
        if b > 1:
            offsets = torch.arange(b, device=x.device, dtype=order.dtype)[:, None] * (h * w)
            order, inverse = (order + offsets).flatten(), (inverse + offsets).flatten()
        tokens = x.reshape(b * h * w, c).index_select(0, order).view(b * nwh, nww, n, c)
        keeps = None if keep is None else keep.reshape(-1, 1).index_select(0, order).view(b * nwh, nww, n, 1)
        kinds = shift_mask_kinds(ws, s, x.device) if s else None
        rows = max(1, INFERENCE_CHUNK_TOKENS // (nww * n))
        for r0 in range(0, b * nwh, rows):
            r1 = min(r0 + rows, b * nwh)
            border = None
            if kinds is not None:
                border = WindowBorder(kinds, [i - r0 for i in range(r0, r1) if i % nwh == nwh - 1])
            self._infer_chunk(tokens[r0:r1], None if keeps is None else keeps[r0:r1], border)
        return tokens.view(b * h * w, c).index_select(0, inverse).view(b, h, w, c)

    def _infer_chunk(self, x: Tensor, keep: Tensor | None, border: WindowBorder | None) -> None:
        """Apply the block in place to window rows (R, nWw, N, C)."""
        y = self.norm1(x)
        if keep is not None:
            y.mul_(keep.to(y.dtype))
        x += self.attn.infer(y, border)
        x += self.mlp(self.norm2(x))

    def probe(self, x: Tensor, keep: Tensor | None, pixel: tuple[int, int]) -> tuple[Tensor, Tensor, Tensor]:
        """Attention weights of ``pixel``'s token, as :meth:`forward` computes them.

        Returns:
            (weights (B, nH, ws, ws), key_rows (ws, ws), key_cols (ws, ws)).
        """
        ws, (h, w) = self.window_size, x.shape[1:3]
        sy, sx = (pixel[0] - self.shift) % h, (pixel[1] - self.shift) % w
        windows, mask = self.windows(x, keep)
        token = (sy % ws) * ws + sx % ws
        weights = self.attn.query_weights(windows, mask, (sy // ws, sx // ws), token)
        offs = torch.arange(ws)
        rows = ((sy // ws) * ws + offs + self.shift) % h
        cols = ((sx // ws) * ws + offs + self.shift) % w
        grid_r, grid_c = torch.meshgrid(rows, cols, indexing="ij")
        return weights.view(*weights.shape[:2], ws, ws), grid_r, grid_c


def precise_conv(convs: tuple[nn.Module, ...], x: Tensor, dtype: torch.dtype | str | None) -> Tensor:
    """``convs`` applied in turn to ``x``, with their products in fp32 when inferring under
    autocast.

    The convolutions are ~10-15 % of the network's products, but in bf16 they cost the most
    accuracy: with all of them in bf16 a denoised Kodak image lost up to 0.031 dB against fp32,
    with them in fp32 at most 0.006 dB, for about 5 % more time on a CPU
    (benchmarks/inference_notes.md, "Precision auto"). With autograd on (training) autocast's
    choice stands: speed matters more there.

    Args:
        convs: Convolutions (or stacks of them), applied in this order.
        x: (B, C, H, W) input.
        dtype: What the fp32 result is cast to, channels-last (the layout the blocks read
            fastest): the dtype of the residual stream it joins, ``"autocast"`` for autocast's
            dtype, or None to keep it fp32 (the image).
    """
    device = x.device.type
    precise = (not torch.is_grad_enabled() and torch.amp.is_autocast_available(device)
               and torch.is_autocast_enabled(device))
    with torch.autocast(device, enabled=False) if precise else contextlib.nullcontext():
        y = x.float() if precise else x
        for conv in convs:
            y = conv(y)
    if not precise or dtype is None:
        return y
    dtype = torch.get_autocast_dtype(device) if dtype == "autocast" else dtype
    return y.to(dtype, memory_format=torch.channels_last)


def residual_conv(dim: int, kind: str) -> nn.Module:
    """Convolution closing a residual group: one 3x3 conv or the light 3-conv stack."""
    if kind == "1conv":
        return nn.Conv2d(dim, dim, 3, 1, 1)
    return nn.Sequential(
        nn.Conv2d(dim, dim // 4, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(dim // 4, dim // 4, 1, 1, 0), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(dim // 4, dim, 3, 1, 1))


class BlockStack(nn.Module):
    """The blocks of one residual group (official name: ``residual_group``)."""

    def __init__(self, blocks: list[SwinBlock]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)


class RSTB(nn.Module):
    """Residual Swin transformer block: Swin blocks, a convolution and a skip connection."""

    def __init__(self, cfg: SwinIRConfig, depth: int, heads: int) -> None:
        super().__init__()
        self.residual_group = BlockStack([
            SwinBlock(cfg.embed_dim, heads, cfg.window_size,
                      0 if i % 2 == 0 else cfg.window_size // 2, cfg.mlp_ratio)
            for i in range(depth)])
        self.conv = residual_conv(cfg.embed_dim, cfg.resi_connection)


class PatchNorm(nn.Module):
    """LayerNorm of the embedded tokens (official name: ``patch_embed.norm``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)


class MaskedSwinIR(nn.Module):
    """SwinIR denoiser of the masked-training paper.

    ``output = conv_last(conv_after_body(features(conv_first(x - mean)))) + mean``, with
    a 1x1 ``conv_first``, no global residual, reflection padding to the window size.

    Args:
        cfg: Architecture.
    """

    def __init__(self, cfg: SwinIRConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dim = cfg.embed_dim
        self.register_buffer("rgb_mean", torch.tensor(cfg.rgb_mean).view(1, -1, 1, 1),
                             persistent=False)
        self.conv_first = nn.Conv2d(cfg.in_chans, dim, 1, 1, 0)
        self.patch_embed = PatchNorm(dim)
        self.layers = nn.ModuleList(
            RSTB(cfg, depth, heads) for depth, heads in zip(cfg.depths, cfg.num_heads, strict=True))
        self.norm = nn.LayerNorm(dim)
        self.conv_after_body = residual_conv(dim, cfg.resi_connection)
        self.conv_last = nn.Conv2d(dim, cfg.in_chans, 3, 1, 1)
        self.apply(_init_weights)

    @property
    def blocks(self) -> list[SwinBlock]:
        """All Swin blocks in forward order."""
        return [blk for layer in self.layers for blk in layer.residual_group.blocks]

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        """Size of the grid the network works on (sides rounded up to the window size)."""
        ws = self.cfg.window_size
        return -(-height // ws) * ws, -(-width // ws) * ws

    def forward(self, x: Tensor, attn_mask_ratio: float = 0.0,
                generator: torch.Generator | None = None, keep_maps: Tensor | None = None,
                probe: ProbeRequest | None = None) -> Tensor | tuple[Tensor, ProbeResult]:
        """Denoise a batch.

        Args:
            x: Images (B, C, H, W) in [0, 1] (input-masked pixels may hold -0.1).
            attn_mask_ratio: Share of tokens each block drops (0 = no attention mask;
                the paper uses 0.75). Ignored when ``keep_maps`` is given.
            generator: Randomness of the keep-maps; must live on ``x.device``.
            keep_maps: Explicit keep-maps (num_blocks, B or 1, Hp, Wp) or
                (num_blocks, Hp, Wp) on the padded grid, 1 = keep.
            probe: What to keep for inspection; when given, a :class:`ProbeResult`
                is returned with the output.

        Returns:
            The denoised images (B, C, H, W), and the probe result when ``probe`` is set.
        """
        if x.dim() != 4 or x.shape[1] != self.cfg.in_chans:
            raise ValueError(f"expected (B, {self.cfg.in_chans}, H, W), got {tuple(x.shape)}")
        b, _, h, w = x.shape
        hp, wp = self.padded_size(h, w)
        keeps = self._keep_maps(keep_maps, attn_mask_ratio, generator, b, hp, wp, x.device)
        if (hp, wp) != (h, w):
            x = F.pad(x, (0, wp - w, 0, hp - h), mode="reflect")
        mean = self.rgb_mean.to(x.dtype)
        feats = precise_conv((self.conv_first,), (x - mean) * self.cfg.img_range, "autocast")
        if torch.is_grad_enabled() and feats.dtype != torch.float32:
            # Training under autocast: keep the residual stream in fp32. CPU autocast leaves
            # LayerNorm in the input's dtype, and its bf16 backward is ~3x slower than fp32's
            # (the whole lite step gains ~8 %); CUDA autocast already runs LayerNorm in fp32.
            feats = feats.float()
        result = ProbeResult() if probe is not None else None
        feats = self.forward_features(feats, keeps, probe, result)
        out = precise_conv((self.conv_after_body, self.conv_last), feats, None)
        out = out / self.cfg.img_range + mean
        out = out[:, :, :h, :w]
        if result is not None:
            result.keep_maps = {i: m[:, :h, :w] for i, m in result.keep_maps.items()}
            result.features = {i: f[:, :, :h, :w] for i, f in result.features.items()}
            return out, result
        return out

    def forward_features(self, x: Tensor, keeps: Tensor | None, probe: ProbeRequest | None,
                         result: ProbeResult | None) -> Tensor:
        """Residual groups on (B, C, H, W) features; returns (B, C, H, W)."""
        x = self.patch_embed.norm(x.permute(0, 2, 3, 1))
        index = 0
        if probe is not None:
            _check_groups(probe.feature_groups, len(self.layers))
        for group, layer in enumerate(self.layers):
            skip = x
            for blk in layer.residual_group.blocks:
                keep = None if keeps is None else keeps[index]
                if probe is not None and result is not None:
                    _record(blk, index, x, keep, probe, result)
                x = blk(x, keep)
                index += 1
            x = precise_conv((layer.conv,), x.permute(0, 3, 1, 2), skip.dtype).permute(0, 2, 3, 1) + skip
            if probe is not None and result is not None and group in probe.feature_groups:
                # A view: no later step writes into this tensor (the next group's blocks
                # gather it into new ones), so it needs no copy.
                result.features[group] = x.detach().permute(0, 3, 1, 2)
        return self.norm(x).permute(0, 3, 1, 2)

    def _keep_maps(self, keep_maps: Tensor | None, ratio: float,
                   generator: torch.Generator | None, b: int, hp: int, wp: int,
                   device: torch.device) -> Tensor | None:
        n = self.cfg.num_blocks
        if keep_maps is None:
            if ratio <= 0:
                return None
            return draw_keep_maps(n, b, hp, wp, ratio, generator, device)
        if keep_maps.dim() == 3:
            keep_maps = keep_maps[:, None]
        if keep_maps.dim() != 4 or keep_maps.shape[0] != n or keep_maps.shape[2:] != (hp, wp) \
                or keep_maps.shape[1] not in (1, b):
            raise ValueError(
                f"keep_maps must be ({n}, B or 1, {hp}, {wp}) on the padded grid, "
                f"got {tuple(keep_maps.shape)}")
        return keep_maps.to(device).expand(n, b, hp, wp)


def _check_groups(groups: tuple[int, ...], count: int) -> None:
    bad = [g for g in groups if isinstance(g, bool) or not isinstance(g, int) or not 0 <= g < count]
    if bad:
        raise ValueError(f"feature_groups must be group indices 0..{count - 1}, got {bad}")


def _record(blk: SwinBlock, index: int, x: Tensor, keep: Tensor | None,
            probe: ProbeRequest, result: ProbeResult) -> None:
    if index in probe.keep_map_blocks:
        full = torch.ones(x.shape[:3], device=x.device) if keep is None else keep
        result.keep_maps[index] = full.detach().float()
    if index in probe.attention_blocks:
        with torch.no_grad():
            for pixel in probe.query_pixels:
                weights, rows, cols = blk.probe(x, keep, pixel)
                result.attention.append(AttentionProbe(index, pixel, weights.float(), rows, cols))


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
