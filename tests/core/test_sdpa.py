"""Opt-in training through F.scaled_dot_product_attention: the same numbers as the explicit path."""

from __future__ import annotations

import pytest
import torch

from model_core.network import MaskedSwinIR, SwinIRConfig
from model_core.network.attention import _attend, _attend_shifted, shift_mask_kinds, use_sdpa
from model_core.network.masks import draw_keep_maps


def _pair(seed: int = 0) -> tuple[MaskedSwinIR, MaskedSwinIR]:
    torch.manual_seed(seed)
    plain = MaskedSwinIR(SwinIRConfig.tiny())
    with torch.no_grad():  # a lively bias: the default init is nearly zero
        for blk in plain.blocks:
            blk.attn.relative_position_bias_table.normal_(0, 1)
    fused = MaskedSwinIR(SwinIRConfig.tiny())
    fused.load_state_dict(plain.state_dict())
    use_sdpa(fused)
    return plain, fused


@pytest.mark.parametrize("keep", [False, True])
def test_sdpa_training_equals_the_explicit_products(keep):
    plain, fused = _pair()
    assert all(blk.attn.sdpa for blk in fused.blocks) and not any(blk.attn.sdpa for blk in plain.blocks)
    assert any(blk.shift for blk in plain.blocks)  # the shift masks are exercised
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    keeps = draw_keep_maps(4, 2, 16, 16, 0.75, torch.Generator().manual_seed(2)) if keep else None
    outs, grads = [], []
    for model in (plain, fused):
        out = model(x, keep_maps=keeps)
        out.square().mean().backward()
        outs.append(out.detach())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    torch.testing.assert_close(outs[1], outs[0], atol=1e-5, rtol=1e-5)
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, atol=1e-5, rtol=1e-4, msg=name)
    assert grads[0]["layers.0.residual_group.blocks.1.attn.relative_position_bias_table"].abs().max() > 0


def test_sdpa_attend_equals_attend_with_and_without_shift_masks():
    gen = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 3, 3, 2, 16, 6, generator=gen, requires_grad=True) for _ in range(3))
    bias = torch.randn(2, 16, 16, generator=gen, requires_grad=True)
    kinds = shift_mask_kinds(4, 2, torch.device("cpu"))
    for attend in (lambda s: _attend(q, k, v, bias, s), lambda s: _attend_shifted(q, k, v, bias, kinds, s)):
        want, got = attend(False), attend(True)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        (g_want,) = torch.autograd.grad(want.sum(), bias)
        (g_got,) = torch.autograd.grad(got.sum(), bias)
        torch.testing.assert_close(g_got, g_want, atol=1e-5, rtol=1e-4)
