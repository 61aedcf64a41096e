"""Window self-attention with relative position bias, using fused attention kernels."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Value the official code adds to the logits of token pairs that the cyclic shift put
# into one window without being neighbours. Kept (instead of -inf) for parity.
SHIFT_MASK_VALUE = -100.0


def relative_position_index(window_size: int) -> Tensor:
    """Index into the relative-position bias table for every token pair of a window.

    Returns:
        Long tensor (N, N), N = window_size**2, values in [0, (2*window_size-1)**2).
    """
    coords = torch.stack(torch.meshgrid(
        torch.arange(window_size), torch.arange(window_size), indexing="ij"))
    flat = coords.flatten(1)
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0) + (window_size - 1)
    return rel[..., 0] * (2 * window_size - 1) + rel[..., 1]


@functools.lru_cache(maxsize=4)
def shift_window_mask(height: int, width: int, window_size: int, shift: int,
                      device: torch.device) -> Tensor:
    """Additive logit mask of every shifted window (the official ``attn_mask``; a reference).

    The network itself only needs the four distinct masks of :func:`shift_mask_kinds`.

    Args:
        height: Padded feature-map height (a multiple of ``window_size``).
        width: Padded feature-map width (a multiple of ``window_size``).
        window_size: Window side.
        shift: Cyclic shift applied before partitioning.
        device: Where the mask lives.

    Returns:
        Float tensor (nWh, nWw, N, N): 0 for token pairs from one image region,
        ``SHIFT_MASK_VALUE`` for pairs the roll brought together.
    """
    labels = torch.zeros(height, width, device=device)
    cuts = (slice(0, -window_size), slice(-window_size, -shift), slice(-shift, None))
    region = 0
    for rows in cuts:
        for cols in cuts:
            labels[rows, cols] = region
            region += 1
    windows = partition_windows(labels[None, :, :, None], window_size)[0, ..., 0]
    diff = windows[..., :, None] - windows[..., None, :]
    return torch.zeros_like(diff).masked_fill(diff != 0, SHIFT_MASK_VALUE)


@functools.lru_cache(maxsize=16)
def shift_mask_kinds(window_size: int, shift: int, device: torch.device) -> Tensor:
    """The only four distinct window masks of a shifted block, built once per device.

    Interior windows need no mask; windows of the last window column, the last window row,
    and the corner each have their own. They are the masks of a 2x2-window image, so the
    (nWh, nWw, N, N) mask of :func:`shift_window_mask` is never needed.

    Returns:
        Float tensor (2, 2, N, N) indexed by (last row?, last column?).
    """
    labels = torch.zeros(2 * window_size, 2 * window_size, device=device)
    cuts = (slice(0, -window_size), slice(-window_size, -shift), slice(-shift, None))
    for i, rows in enumerate(cuts):
        for j, cols in enumerate(cuts):
            labels[rows, cols] = 3 * i + j
    windows = partition_windows(labels[None, :, :, None], window_size)[0, ..., 0]
    diff = windows[..., :, None] - windows[..., None, :]
    return torch.zeros_like(diff).masked_fill(diff != 0, SHIFT_MASK_VALUE)


@functools.lru_cache(maxsize=8)
def window_order(height: int, width: int, window_size: int, shift: int,
                 device: torch.device) -> tuple[Tensor, Tensor]:
    """Token permutation of a (shifted) window partition, built once per size and device.

    ``x.view(H*W, C)[order]`` equals ``partition_windows(roll(x, -shift), window_size)``
    flattened, and ``tokens[inverse]`` undoes it: one gather each way instead of a roll and
    a permuting copy.

    Returns:
        (order, inverse), int32 tensors (H*W,).
    """
    pos = torch.arange(height * width, device=device, dtype=torch.int32).view(1, height, width, 1)
    if shift:
        pos = torch.roll(pos, shifts=(-shift, -shift), dims=(1, 2))
    order = partition_windows(pos, window_size).reshape(-1)
    inverse = torch.empty_like(order)
    inverse[order.long()] = torch.arange(order.numel(), device=device, dtype=torch.int32)
    return order, inverse


def partition_windows(x: Tensor, window_size: int) -> Tensor:
    """Split a channels-last map into windows.

    Args:
        x: (B, H, W, C) with H and W multiples of ``window_size``.
        window_size: Window side.

    Returns:
        (B, nWh, nWw, window_size**2, C).
    """
    b, h, w, c = x.shape
    x = x.view(b, h // window_size, window_size, w // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(
        b, h // window_size, w // window_size, window_size * window_size, c)


def merge_windows(windows: Tensor, window_size: int) -> Tensor:
    """Inverse of :func:`partition_windows`: (B, nWh, nWw, N, C) -> (B, H, W, C)."""
    b, nwh, nww, _, c = windows.shape
    x = windows.view(b, nwh, nww, window_size, window_size, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, nwh * window_size, nww * window_size, c)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside non-overlapping windows.

    Parameter and buffer names match the official SwinIR ``WindowAttention``.

    Args:
        dim: Token feature width.
        window_size: Window side.
        num_heads: Number of attention heads.
    """

    def __init__(self, dim: int, window_size: int, num_heads: int) -> None:
        super().__init__()
        self.dim = dim
        self.window_size = window_size
        self.num_heads = num_heads
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(window_size))
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)
        self._memo: dict[str, tuple[tuple[Any, ...], Any]] = {}
        # Training through F.scaled_dot_product_attention (its fused CUDA kernels) instead of
        # explicit products; off by default (see :func:`use_sdpa`). Not part of the weights.
        self.sdpa = False

    def position_bias(self) -> Tensor:
        """Relative position bias (nH, N, N)."""
        n = self.window_size * self.window_size
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, self.num_heads).permute(2, 0, 1).contiguous()

    def cached_position_bias(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """:meth:`position_bias` in ``dtype`` without autograd, rebuilt only when the table changes."""
        return self._memoised("bias", (self.relative_position_bias_table,), dtype,
                              lambda: self.position_bias().to(dtype))

    def head_major_qkv(self) -> tuple[Tensor, Tensor]:
        """``qkv`` weight (3C, C) and bias (3C, 1) with rows reordered from (3, nH, d) to (nH, 3, d).

        ``weight @ tokens^T`` then yields each head's q, k and v as adjacent (d, N) matrices,
        so splitting heads needs no permuting copy.
        """
        def build() -> tuple[Tensor, Tensor]:
            c, heads = self.dim, self.num_heads
            weight = self.qkv.weight.view(3, heads, c // heads, c).transpose(0, 1).reshape(3 * c, c)
            bias = self.qkv.bias.view(3, heads, c // heads).transpose(0, 1).reshape(3 * c, 1)
            return weight.contiguous(), bias.contiguous()

        return self._memoised("qkv", (self.qkv.weight, self.qkv.bias), torch.float32, build)

    def _memoised(self, name: str, params: tuple[Tensor, ...], dtype: torch.dtype,
                  build: Callable[[], Any]) -> Any:
        """A tensor derived from ``params``, rebuilt only when one of them changes.

        The key is each parameter's storage, version counter and device, so loading weights,
        an optimiser step or moving the module invalidates it. A memo, not model state: it
        never changes what :meth:`forward` computes.
        """
        key = (dtype, *((p.data_ptr(), p._version, p.device) for p in params))
        found = self._memo.get(name)
        if found is None or found[0] != key:
            with torch.no_grad():
                found = (key, build())
            self._memo[name] = found
        return found[1]

    def infer(self, windows: Tensor, border: WindowBorder | None = None) -> Tensor:
        """Inference-only :meth:`forward` on a chunk of whole window rows (no autograd).

        Same numbers as :meth:`forward` (the same sums in the same order, up to the kernels'
        rounding), laid out for small windows on CPUs: the qkv projection is computed
        transposed with head-major rows, so each head's q, k, v are (d, N) matrices without a
        permuting copy, logits get the bias and shift masks in place, the softmax runs in
        place, and ``attn @ v`` is computed transposed (``v^T attn^T``), which BLAS runs far
        faster for a head width of ~10 than the (N, N) x (N, d) product.

        Args:
            windows: (R, nWw, N, C) tokens of R window rows.
            border: The shift masks of these rows, None for an unshifted block.

        Returns:
            (R, nWw, N, C).
        """
        r, nww, n, c = windows.shape
        heads, d = self.num_heads, c // self.num_heads
        weight, bias = self.head_major_qkv()
        tokens_t = windows.reshape(r * nww, n, c).transpose(1, 2)
        qkv_t = torch.baddbmm(bias, weight.expand(r * nww, 3 * c, c), tokens_t)
        q_t, k_t, v_t = qkv_t.view(r * nww * heads, 3, d, n).unbind(1)
        out_t = self.attend_transposed(q_t, k_t, v_t, r, border).reshape(r * nww, c, n)
        # proj on the transposed heads without a permuting copy: out = out_t^T W^T + b.
        weight = self.proj.weight.t().expand(r * nww, c, c)
        return torch.baddbmm(self.proj.bias, out_t.transpose(1, 2), weight).view(r, nww, n, c)

    def attend_transposed(self, q_t: Tensor, k_t: Tensor, v_t: Tensor, rows: int,
                          border: WindowBorder | None) -> Tensor:
        """The attention core of :meth:`infer`: per window and head, softmax(q k^T / sqrt(d) + bias
        + shift masks) v, on and to transposed (R * nWw * nH, d, N) matrices of ``rows`` window
        rows (``q_t`` is scaled in place)."""
        windows_heads, d, n = q_t.shape
        q_t.mul_(d ** -0.5)
        logits = torch.bmm(q_t.transpose(1, 2), k_t)
        grid = logits.view(rows, windows_heads // (rows * self.num_heads), self.num_heads, n, n)
        grid.add_(self.cached_position_bias(logits.dtype))
        if border is not None:
            border.add_to(grid)
        torch.ops.aten._softmax.out(logits, -1, False, out=logits)
        return torch.bmm(v_t, logits.transpose(1, 2))

    def split_heads(self, windows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Project windows (B, nWh, nWw, N, C) to q, k, v, each (B, nWh, nWw, nH, N, d)."""
        b, nwh, nww, n, c = windows.shape
        qkv = self.qkv(windows).view(b, nwh, nww, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(4, 0, 1, 2, 5, 3, 6).unbind(0)
        return q, k, v

    def forward(self, windows: Tensor, shift_mask: Tensor | None = None) -> Tensor:
        """Attend within each window.

        Args:
            windows: (B, nWh, nWw, N, C) tokens.
            shift_mask: The (2, 2, N, N) window masks of a shifted block from
                :func:`shift_mask_kinds`, or None for an unshifted block.

        Returns:
            (B, nWh, nWw, N, C).
        """
        q, k, v = self.split_heads(windows)
        bias = self.position_bias().to(q.dtype)
        if shift_mask is None:
            out = _attend(q, k, v, bias, self.sdpa)
        else:
            out = _attend_shifted(q, k, v, bias, shift_mask.to(q.dtype), self.sdpa)
        b, nwh, nww, heads, n, d = out.shape
        out = out.permute(0, 1, 2, 4, 3, 5).reshape(b, nwh, nww, n, heads * d)
        return self.proj(out)

    def query_weights(self, windows: Tensor, shift_mask: Tensor | None,
                      window: tuple[int, int], token: int) -> Tensor:
        """Attention weights of one query token over its window (for visualisation).

        Args:
            windows: (B, nWh, nWw, N, C) tokens as given to :meth:`forward`.
            shift_mask: As in :meth:`forward`.
            window: (row, col) of the window on the window grid.
            token: Index of the query token inside the window.

        Returns:
            (B, nH, N) softmax weights.
        """
        wy, wx = window
        last_row, last_col = wy == windows.shape[1] - 1, wx == windows.shape[2] - 1
        q, k, _ = self.split_heads(windows[:, wy:wy + 1, wx:wx + 1])
        scale = q.shape[-1] ** -0.5
        logits = (q[:, 0, 0, :, token:token + 1] * scale) @ k[:, 0, 0].transpose(-1, -2)
        logits = logits[:, :, 0] + self.position_bias()[:, token]
        if shift_mask is not None:
            logits = logits + shift_mask[int(last_row), int(last_col), token]
        return logits.softmax(dim=-1)


class WindowBorder:
    """The shift masks of a chunk of window rows of a shifted block (see :meth:`add_to`).

    Args:
        kinds: (2, 2, N, N) from :func:`shift_mask_kinds`.
        last_rows: Indices, inside the chunk, of rows that are an image's last window row.
    """

    def __init__(self, kinds: Tensor, last_rows: list[int]) -> None:
        self.kinds = kinds
        self.last_rows = last_rows

    def add_to(self, logits: Tensor) -> None:
        """Add the masks to logits (R, nWw, nH, N, N) in place; interior windows have none."""
        kinds = self.kinds.to(logits.dtype)
        last = set(self.last_rows)
        inner = [i for i in range(logits.shape[0]) if i not in last]
        if len(inner) == logits.shape[0]:
            logits[:, -1].add_(kinds[0, 1])
        else:
            for i in inner:
                logits[i, -1].add_(kinds[0, 1])
        for i in self.last_rows:
            logits[i, :-1].add_(kinds[1, 0])
            logits[i, -1].add_(kinds[1, 1])


def use_sdpa(model: nn.Module, enabled: bool = True) -> None:
    """Train ``model``'s window attention through ``F.scaled_dot_product_attention``.

    By default training computes attention with explicit products (``baddbmm``, softmax,
    ``bmm``), the fastest on CPUs, where the fused kernels take no gradient for the learnable
    position bias. On CUDA the memory-efficient kernel takes an additive mask with its gradient,
    so one fused kernel replaces the three. The mask is the same (position bias plus the shift
    masks), so the numbers are the same up to the kernels' rounding; inference is unchanged.
    """
    for module in model.modules():
        if isinstance(module, WindowAttention):
            module.sdpa = enabled


def _attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor, sdpa: bool = False) -> Tensor:
    """Fused attention over (B, *windows, nH, N, d) with a mask broadcastable per window.

    ``sdpa``: train through ``F.scaled_dot_product_attention`` too (:func:`use_sdpa`).
    """
    lead = q.shape[:-3]
    heads, n, d = q.shape[-3:]
    flat = (-1, heads, n, d)
    if mask.dim() > 3:
        mask = mask.expand(*lead, heads, n, n).reshape(-1, heads, n, n)
    else:
        # A 4-d mask: with a 3-d one the CPU dispatcher falls back to the slow math kernel.
        mask = mask[None]
    q, k, v = q.reshape(flat), k.reshape(flat), v.reshape(flat)
    if torch.is_grad_enabled() and mask.requires_grad and not sdpa:
        # Training: the fused kernels do not take a learnable mask, and the math
        # fallback adds a costly "safe softmax"; plain attention is faster here.
        logits = torch.baddbmm(mask.expand(q.shape[0], heads, n, n).reshape(-1, n, n),
                               q.reshape(-1, n, d), k.reshape(-1, n, d).transpose(1, 2),
                               alpha=d ** -0.5)
        out = logits.softmax(dim=-1).bmm(v.reshape(-1, n, d))
    else:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return out.view(*lead, heads, n, d)


def _attend_shifted(q: Tensor, k: Tensor, v: Tensor, bias: Tensor, kinds: Tensor,
                    sdpa: bool = False) -> Tensor:
    """Attention of a shifted block, given the (2, 2, N, N) window masks of :func:`shift_mask_kinds`.

    Only the last window row and column mix image regions, so the interior is computed with
    the position bias alone and the border with bias plus mask; no mask the size of the
    window grid is ever materialised (at a 2048-pixel GPU tile that would be a gigabyte).
    """
    nwh, nww = q.shape[1:3]
    n = kinds.shape[-1]

    def border(rows: slice, cols: slice, shift_mask: Tensor) -> Tensor:
        mask = bias + shift_mask[:, :, None]
        return _attend(q[:, rows, cols], k[:, rows, cols], v[:, rows, cols], mask, sdpa)

    last_row = torch.cat([kinds[1, 0].expand(nww - 1, n, n), kinds[1, 1][None]])[None]
    bottom = border(slice(nwh - 1, nwh), slice(0, nww), last_row)
    if nwh == 1:
        return bottom
    right = border(slice(0, nwh - 1), slice(nww - 1, nww), kinds[0, 1].expand(nwh - 1, 1, n, n))
    if nww == 1:
        return torch.cat([right, bottom], dim=1)
    inner = _attend(q[:, :-1, :-1], k[:, :-1, :-1], v[:, :-1, :-1], bias, sdpa)
    return torch.cat([torch.cat([inner, right], dim=2), bottom], dim=1)
