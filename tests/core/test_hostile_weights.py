"""Corrupt, misnamed and hostile weights files: one clear error naming the file, nothing executed."""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from model_core.network import SwinIRConfig, build_model
from model_core.network import checkpoint as ckpt
from model_core.network.checkpoint import CheckpointError, load_weights, save_weights


def _named(path: Path) -> str:
    return re.escape(str(path))


@pytest.fixture()
def tiny_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return build_model(SwinIRConfig.tiny()).state_dict()


def _mdn_file(path: Path, state: dict[str, torch.Tensor], **config: object) -> Path:
    """An mdn safetensors file holding ``state`` whose metadata config is tiny with ``config``."""
    cfg = {**SwinIRConfig.tiny().to_dict(), **config}
    save_file(dict(state), str(path), metadata={"format": ckpt.FORMAT_TAG, "config": json.dumps(cfg)})
    return path


# ----------------------------------------------------------------------------- configs


@pytest.mark.parametrize(("changes", "message"), [
    ({"mlp_ratio": -1}, "mlp_ratio"),
    ({"mlp_ratio": 100.0}, "mlp_ratio"),
    ({"mlp_ratio": float("nan")}, "mlp_ratio"),
    ({"embed_dim": 480000}, "embed_dim"),
    ({"depths": (4000,) * 4}, "depths"),
    ({"depths": (6,) * 20, "num_heads": (6,) * 20}, "same length"),
    ({"in_chans": 0, "rgb_mean": ()}, "in_chans"),
    ({"window_size": 0}, r"window_size must be in 1\.\.64, not 0"),
    ({"window_size": 1000}, "window_size"),
    ({"window_size": "eight"}, "window_size"),
    ({"embed_dim": True}, "embed_dim must be an integer"),
    ({"num_heads": (0, 6, 6, 6)}, "num_heads"),
    ({"img_range": 0.0}, "img_range"),
    ({"img_size": -16}, "img_size"),
])
def test_config_rejects_sizes_out_of_bounds(changes, message):
    with pytest.raises((ValueError, TypeError), match=message):
        SwinIRConfig(**changes)


@pytest.mark.parametrize("config", [{"mlp_ratio": -1}, {"embed_dim": 480000}, {"depths": [4000, 4000]}])
def test_hostile_config_in_metadata_names_the_file(tiny_state, tmp_path, config):
    path = _mdn_file(tmp_path / "cfg.safetensors", tiny_state, **config)
    with pytest.raises(CheckpointError, match=_named(path) + ".*bad model config"):
        load_weights(path)


def test_config_bigger_than_the_file_is_refused_before_building(tiny_state, tmp_path, monkeypatch):
    # Within the bounds, but ~1.6 G weights: the file's 9,000 cannot match, and no real model is built.
    path = _mdn_file(tmp_path / "big.safetensors", tiny_state, embed_dim=1024, depths=[64, 64],
                     num_heads=[16, 16], window_size=8)
    built = []
    real = ckpt.MaskedSwinIR

    def spy(cfg: SwinIRConfig) -> torch.nn.Module:
        built.append(torch.get_default_device().type)
        assert built[-1] == "meta", "a model was allocated for a file that cannot match its config"
        return real(cfg)

    monkeypatch.setattr(ckpt, "MaskedSwinIR", spy)
    with pytest.raises(CheckpointError, match=_named(path) + ".*(missing|mis-shaped)"):
        load_weights(path)
    assert built == ["meta"]


# ----------------------------------------------------------------------------- model cards


@pytest.mark.parametrize("text", ["[1, 2]", "{oops", '"a string"', "[" * 100_000])
def test_a_card_that_is_not_a_json_object_is_ignored_with_a_warning(tmp_path, caplog, text):
    path = save_weights(build_model(SwinIRConfig.tiny()), tmp_path / "w.safetensors", {"name": "w"})
    assert load_weights(path).card["name"] == "w"
    card = path.with_suffix(".json")
    card.write_text(text)
    with caplog.at_level(logging.WARNING, logger=ckpt.__name__):
        loaded = load_weights(path)
    assert loaded.card == {} and loaded.kind == "mdn"
    assert str(card) in caplog.text and "card ignored" in caplog.text


# ----------------------------------------------------------------------------- official checkpoints


def test_one_dimensional_bias_table_names_file_and_entry(tiny_state, tmp_path):
    key = "layers.0.residual_group.blocks.0.attn.relative_position_bias_table"
    path = tmp_path / "official_1d.pth"
    torch.save({**tiny_state, key: torch.zeros(49)}, path)
    with pytest.raises(CheckpointError, match=_named(path) + ".*relative_position_bias_table"):
        load_weights(path)


@pytest.mark.parametrize("index", [torch.zeros(0, dtype=torch.long), torch.zeros(1, 1, dtype=torch.long)])
def test_bad_relative_position_index_names_file_and_entry(tiny_state, tmp_path, index):
    key = "layers.0.residual_group.blocks.0.attn.relative_position_index"
    path = tmp_path / "official_win.pth"
    torch.save({**tiny_state, key: index}, path)
    with pytest.raises(CheckpointError, match=_named(path) + ".*relative_position_index"):
        load_weights(path)


def test_unusable_inferred_architecture_names_the_file(tiny_state, tmp_path):
    key = "layers.0.residual_group.blocks.0.mlp.fc1.weight"
    path = tmp_path / "no_mlp.pth"
    torch.save({**tiny_state, key: torch.zeros(0, 12)}, path)
    with pytest.raises(CheckpointError, match=_named(path) + ".*mlp_ratio"):
        load_weights(path)


def test_too_many_groups_are_refused_without_scanning_them_all(tiny_state, tmp_path):
    state = dict(tiny_state)
    for group in range(2, 40):
        state[f"layers.{group}.residual_group.blocks.0.norm1.weight"] = torch.zeros(12)
    path = tmp_path / "groups.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=_named(path) + ".*(depths|relative_position)"):
        load_weights(path)


# ----------------------------------------------------------------------------- pickles and formats


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _assert_refused_as_code(path: Path) -> None:
    with pytest.raises(CheckpointError) as info:
        load_weights(path)
    message = str(info.value)
    assert message.startswith(f"{path}: refused")
    assert re.search(r"\((posix|nt)\.system\)", message), message
    assert "never unpickles code" in message and "weights_only" not in message
    assert "\n" not in message


def test_pickled_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pth"
    torch.save({"params": _Evil(marker)}, path)
    _assert_refused_as_code(path)
    assert not marker.exists()


def test_plain_pickle_of_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil_raw.pth"
    path.write_bytes(pickle.dumps(_Evil(marker), protocol=4))
    _assert_refused_as_code(path)
    assert not marker.exists()


@pytest.mark.parametrize("data", [os.urandom(4096).replace(b"\x80", b"\x00").replace(b"P", b"Q")
                                  .replace(b"{", b"}"), b"", b"abc"])
@pytest.mark.parametrize("name", ["random.pth", "random.safetensors", "random.bin"])
def test_not_a_weights_file(tmp_path, data, name):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match=_named(path) + ": not a PyTorch or safetensors weights file$"):
        load_weights(path)


@pytest.mark.parametrize("name", ["UPPER.SAFETENSORS", "misnamed.pth", "noext"])
def test_format_is_read_from_the_bytes_not_the_name(tmp_path, name):
    model = build_model(SwinIRConfig.tiny())
    saved = save_weights(model, tmp_path / "m.safetensors")
    path = saved.rename(tmp_path / name)
    loaded = load_weights(path)
    assert loaded.kind == "mdn" and loaded.config == SwinIRConfig.tiny()


def test_official_pth_named_safetensors_loads(tiny_state, tmp_path):
    path = tmp_path / "official.safetensors"
    torch.save({"params": tiny_state}, path)
    assert load_weights(path).kind == "official"


# ----------------------------------------------------------------------------- training checkpoints


def test_training_checkpoint_loads_its_ema_weights_and_training_config(tmp_path):
    from model_core.train.config import TrainConfig
    from model_core.train.loop import new_state, save_checkpoint

    cfg = TrainConfig.preset_config("baseline", model_size="tiny")
    state = new_state(cfg, torch.device("cpu"))
    with torch.no_grad():
        state.model.conv_first.weight.add_(1.0)  # the raw model now differs from the EMA
    state.iteration = 7
    path = tmp_path / "last.ckpt"
    save_checkpoint(state, cfg, path)
    loaded = load_weights(path)
    assert loaded.kind == "training"
    assert loaded.card["train_config"]["attn_mask_ratio"] == 0.0 and loaded.card["iterations"] == 7
    assert "model_core.train.publish" in loaded.card["note"]
    torch.testing.assert_close(loaded.model.conv_first.weight, state.ema.conv_first.weight)


@pytest.mark.parametrize("history", ["not json", "{}", "[1, {\"iterations\": \"3\"}]", "[[[[", "null"])
def test_training_checkpoint_with_a_garbled_history_still_loads(tmp_path, history):
    from model_core.train.config import TrainConfig
    from model_core.train.loop import new_state, save_checkpoint

    cfg = TrainConfig.preset_config("masked", model_size="tiny")
    state = new_state(cfg, torch.device("cpu"))
    state.iteration = 5
    path = tmp_path / "last.ckpt"
    save_checkpoint(state, cfg, path)
    payload = torch.load(path, weights_only=True)
    payload["history"] = history
    torch.save(payload, path)
    card = load_weights(path).card
    assert card["iterations"] == 5 and "total_iterations" not in card and "history" not in card


@pytest.mark.parametrize("ratio", ["abc", None, True, 5.0, -0.5, [0.5]])
def test_card_with_a_bad_training_ratio_falls_back_to_the_paper(ratio, caplog):
    from model_core.weights import PAPER_ATTN_MASK_RATIO, training_attn_mask_ratio

    with caplog.at_level(logging.WARNING):
        assert training_attn_mask_ratio({"train_config": {"attn_mask_ratio": ratio}}) == PAPER_ATTN_MASK_RATIO
    assert "attn_mask_ratio" in caplog.text


# ----------------------------------------------------------------------------- values of the weights


def test_integer_weights_with_an_mdn_card_are_refused(tiny_state, tmp_path, capsys):
    from model_core import cli

    ints = {k: v.to(torch.int32) if v.is_floating_point() else v for k, v in tiny_state.items()}
    path = _mdn_file(tmp_path / "ints.safetensors", ints)
    with pytest.raises(CheckpointError, match=_named(path) + r".*not floating point.*int32"):
        load_weights(path)
    assert cli.main(["info", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mdn info: error: ") and "floating point" in err and "\n" not in err


def test_integer_weights_in_an_official_checkpoint_are_refused(tiny_state, tmp_path):
    key = "conv_first.weight"
    path = tmp_path / "official_int.pth"
    torch.save({"params": {**tiny_state, key: tiny_state[key].to(torch.int64)}}, path)
    message = r".*1 weight\(s\) not floating point: conv_first"
    with pytest.raises(CheckpointError, match=_named(path) + message):
        load_weights(path)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_weights_with_nan_or_inf_are_refused(tiny_state, tmp_path, bad):
    state = {k: v * bad if v.is_floating_point() else v for k, v in tiny_state.items()}
    path = _mdn_file(tmp_path / "nan.safetensors", state)
    with pytest.raises(CheckpointError, match=_named(path) + r".*NaN or infinite"):
        load_weights(path)


def test_half_precision_weights_still_load(tiny_state, tmp_path):
    state = {k: v.half() if v.is_floating_point() else v for k, v in tiny_state.items()}
    path = _mdn_file(tmp_path / "half.safetensors", state)
    loaded = load_weights(path)
    assert loaded.model.conv_first.weight.dtype == torch.float32
    torch.testing.assert_close(loaded.model.conv_first.weight, tiny_state["conv_first.weight"].half().float())
