"""The network against the official-code oracle, and its own contracts."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import save_file

from model_core.network import (
    INPUT_MASK_FILL,
    ProbeRequest,
    SwinIRConfig,
    apply_input_mask,
    build_model,
    draw_keep_maps,
)
from model_core.network.checkpoint import (
    CheckpointError,
    infer_config,
    load_official,
    load_weights,
    save_weights,
)


@pytest.fixture(scope="module")
def paper_model(official_state: dict) -> torch.nn.Module:
    model = build_model(SwinIRConfig.paper()).eval()
    state = {k: v for k, v in official_state.items() if not k.endswith("attn_mask")}
    model.load_state_dict(state, strict=True)
    return model


@pytest.mark.parametrize("name", ["a", "b", "c"])
def test_parity_without_attention_mask(paper_model, parity_fixture, name):
    with torch.no_grad():
        out = paper_model(parity_fixture[f"input_{name}"])
    torch.testing.assert_close(out, parity_fixture[f"output_{name}_nomask"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["a", "b"])
def test_parity_with_fixture_keep_maps(paper_model, parity_fixture, name):
    with torch.no_grad():
        out = paper_model(parity_fixture[f"input_{name}"], keep_maps=parity_fixture[f"masks_{name}"])
    torch.testing.assert_close(out, parity_fixture[f"output_{name}_masked"], atol=1e-4, rtol=0)
    # The masks matter: the unmasked output is far from the masked one.
    assert (out - parity_fixture[f"output_{name}_nomask"]).abs().max() > 1e-2


def test_parity_holds_with_autograd_enabled(paper_model, parity_fixture):
    # With gradients the attention takes the training path; numbers must not change.
    out = paper_model(parity_fixture["input_b"], keep_maps=parity_fixture["masks_b"])
    torch.testing.assert_close(out.detach(), parity_fixture["output_b_masked"], atol=1e-4, rtol=0)


def test_official_checkpoint_loads_every_weight(official_state, parity_fixture, tmp_path):
    path = tmp_path / "official.pth"
    torch.save({"params": official_state}, path)
    loaded = load_official(path)
    assert loaded.config == SwinIRConfig.paper()
    assert loaded.kind == "official"
    with torch.no_grad():
        out = loaded.model(parity_fixture["input_a"])
    torch.testing.assert_close(out, parity_fixture["output_a_nomask"], atol=1e-4, rtol=0)


def test_official_config_is_inferred_from_fixture_metadata(official_state, parity_fixture):
    from safetensors import safe_open

    from tests.conftest import FIXTURE

    with safe_open(str(FIXTURE), "pt") as fh:
        meta = json.loads(fh.metadata()["config"])
    assert SwinIRConfig.from_official(meta) == infer_config(official_state)


def test_checkpoint_with_missing_weight_names_it(official_state, tmp_path):
    state = dict(official_state)
    del state["layers.2.residual_group.blocks.3.mlp.fc1.weight"]
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="missing.*layers.2.residual_group.blocks.3.mlp.fc1.weight"):
        load_official(path)


def test_checkpoint_with_wrong_shape_names_it(official_state, tmp_path):
    state = dict(official_state)
    state["conv_last.weight"] = torch.zeros(3, 60, 1, 1)
    path = tmp_path / "shape.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    with pytest.raises(CheckpointError, match="conv_last.weight"):
        load_weights(path)


def test_truncated_checkpoint_is_a_clear_error(official_state, tmp_path):
    path = tmp_path / "cut.pth"
    torch.save(official_state, path)
    path.write_bytes(path.read_bytes()[:4096])
    with pytest.raises(CheckpointError, match="cut.pth"):
        load_weights(path)


class _Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"params": {"x": _Exploit()}}, path)
    with pytest.raises(CheckpointError, match="refused|not a readable"):
        load_weights(path)


def test_plain_swinir_checkpoint_is_recognised(official_state, tmp_path):
    state = dict(official_state)
    state["conv_first.weight"] = torch.zeros(60, 3, 3, 3)
    path = tmp_path / "plain.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="plain SwinIR"):
        load_weights(path)


def test_own_format_round_trip(tmp_path):
    model = build_model(SwinIRConfig.tiny())
    path = save_weights(model, tmp_path / "m.safetensors", {"name": "tiny"})
    loaded = load_weights(path)
    assert loaded.kind == "mdn" and loaded.card["name"] == "tiny"
    assert loaded.config == SwinIRConfig.tiny()
    x = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), model.eval()(x))
    with pytest.raises(FileExistsError):
        save_weights(model, path)


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match="unknown"):
        SwinIRConfig.from_dict({**SwinIRConfig.tiny().to_dict(), "colour": 1})
    with pytest.raises(ValueError, match="divisible"):
        SwinIRConfig(embed_dim=50, num_heads=(6, 6, 6, 6))
    assert SwinIRConfig.from_dict(SwinIRConfig.lite().to_dict()) == SwinIRConfig.lite()


@pytest.fixture(scope="module")
def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(SwinIRConfig.tiny()).eval()


def test_attention_mask_is_seeded(tiny_model):
    x = torch.rand(1, 3, 19, 23)

    def run(seed: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            return tiny_model(x, attn_mask_ratio=0.75, generator=gen)

    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))
    with torch.no_grad():
        assert not torch.allclose(run(3), tiny_model(x))


def test_ratio_zero_equals_all_keep_maps(tiny_model):
    x = torch.rand(2, 3, 16, 16)
    ones = torch.ones(tiny_model.cfg.num_blocks, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(tiny_model(x, attn_mask_ratio=0.0), tiny_model(x, keep_maps=ones))


def test_keep_maps_of_wrong_shape_are_rejected(tiny_model):
    with pytest.raises(ValueError, match="padded grid"):
        tiny_model(torch.rand(1, 3, 18, 18), keep_maps=torch.ones(4, 18, 18))


def test_probe_returns_used_keep_maps_and_attention(tiny_model):
    x = torch.rand(1, 3, 17, 21)
    probe = ProbeRequest(keep_map_blocks=(0, 3), attention_blocks=(1,), query_pixels=((5, 7),))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        out, result = tiny_model(x, attn_mask_ratio=0.5, generator=gen, probe=probe)
        again = tiny_model(x, keep_maps=draw_keep_maps(4, 1, 20, 24, 0.5, torch.Generator().manual_seed(1)))
    torch.testing.assert_close(out, again)
    assert set(result.keep_maps) == {0, 3}
    assert result.keep_maps[0].shape == (1, 17, 21)
    assert 0.3 < 1 - result.keep_maps[0].mean().item() < 0.7
    (att,) = result.attention
    ws = tiny_model.cfg.window_size
    assert att.weights.shape == (1, 2, ws, ws)
    torch.testing.assert_close(att.weights.sum(dim=(-1, -2)), torch.ones(1, 2))
    # The query pixel lies in its own window (block 1 is shifted).
    assert ((att.key_rows == 5) & (att.key_cols == 7)).sum() == 1


def test_probe_weights_match_the_forward_pass(tiny_model):
    """Zeroing a key's attention weight must be what the probe reports: check with a 1-window image."""
    ws = tiny_model.cfg.window_size
    x = torch.rand(1, 3, ws, ws)
    with torch.no_grad():
        _, result = tiny_model(x, probe=ProbeRequest(attention_blocks=(0,), query_pixels=((1, 2),)))
        blk = tiny_model.blocks[0]
        first = tiny_model.conv_first(x - tiny_model.rgb_mean)
        feats = tiny_model.patch_embed.norm(first.permute(0, 2, 3, 1))
        tokens = blk.norm1(feats).reshape(1, ws * ws, -1)
        q, k, _ = blk.attn.qkv(tokens).view(1, ws * ws, 3, 2, -1).permute(2, 0, 3, 1, 4)
        logits = (q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2) + blk.attn.position_bias()
        expected = logits.softmax(-1)[0, :, 1 * ws + 2].view(2, ws, ws)
    torch.testing.assert_close(result.attention[0].weights[0], expected)


def test_input_mask_semantics():
    x = torch.rand(3, 3, 32, 32)
    gen = torch.Generator().manual_seed(0)
    masked, keep = apply_input_mask(x, torch.tensor([0.8, 0.85, 0.9]), gen)
    assert keep.shape == (3, 1, 32, 32)
    dropped = keep.expand_as(x) == 0
    assert torch.all(masked[dropped] == INPUT_MASK_FILL)
    assert torch.equal(masked[~dropped], x[~dropped])
    assert abs((1 - keep.mean()).item() - 0.85) < 0.05
    with pytest.raises(ValueError):
        apply_input_mask(x, 1.0)


def test_gradients_flow_to_every_parameter(tiny_model):
    model = build_model(SwinIRConfig.tiny())
    masked, _ = apply_input_mask(torch.rand(2, 3, 16, 16), 0.85, torch.Generator().manual_seed(0))
    out = model(masked, attn_mask_ratio=0.75, generator=torch.Generator().manual_seed(0))
    out.abs().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


def test_saved_weights_are_readable_by_others(tmp_path):
    old = os.umask(0o022)
    try:
        path = save_weights(build_model(SwinIRConfig.tiny()), tmp_path / "w.safetensors")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    assert path.with_suffix(".json").stat().st_mode & 0o777 == 0o644
    assert not list(tmp_path.glob(".*.tmp"))


def test_training_under_autocast_keeps_the_residual_stream_in_fp32(tiny_model):
    seen = []
    hook = tiny_model.blocks[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0].dtype))
    x = torch.rand(1, 3, 16, 16)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = tiny_model(x, attn_mask_ratio=0.75, generator=torch.Generator().manual_seed(0))
            with torch.no_grad():
                tiny_model(x)
        out.float().mean().backward()
    finally:
        hook.remove()
    assert seen[0] == torch.float32  # training: fp32 residuals, bf16 products
    assert seen[1] == torch.bfloat16  # inference keeps the halved-memory bf16 stream
    assert tiny_model.conv_first.weight.grad is not None


def test_inference_under_autocast_runs_the_convolutions_in_fp32(tiny_model):
    """bf16 convolutions cost the most accuracy against fp32 (benchmarks/inference_notes.md): at
    inference they run in fp32 and hand the blocks a bf16 stream; training keeps bf16 ones."""
    convs = [m for m in tiny_model.modules() if isinstance(m, torch.nn.Conv2d)]
    seen: list[torch.dtype] = []
    stream: list[torch.dtype] = []
    hooks = [conv.register_forward_hook(lambda _m, _args, out: seen.append(out.dtype)) for conv in convs]
    first_block = tiny_model.blocks[0]
    hooks.append(first_block.register_forward_pre_hook(lambda _m, args: stream.append(args[0].dtype)))
    x = torch.rand(1, 3, 16, 16)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            with torch.no_grad():
                out = tiny_model(x, attn_mask_ratio=0.75, generator=torch.Generator().manual_seed(0))
            assert seen == [torch.float32] * len(convs) and stream == [torch.bfloat16]
            assert out.dtype == torch.float32
            seen.clear()
            tiny_model(x)  # training
        assert seen == [torch.bfloat16] * len(convs)
        with torch.no_grad():  # and without autocast nothing changes
            seen.clear()
            tiny_model(x)
        assert seen == [torch.float32] * len(convs)
    finally:
        for hook in hooks:
            hook.remove()
