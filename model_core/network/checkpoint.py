"""Loading and saving weights: official MaskedDenoising checkpoints and mdn's own format.

Nothing here unpickles arbitrary objects: ``.pth`` files go through
``torch.load(weights_only=True)`` and mdn's own files are safetensors.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from model_core.fileio import atomic_replace
from model_core.network.config import SwinIRConfig
from model_core.network.swinir import MaskedSwinIR

FORMAT_TAG = "mdn-swinir/1"
_WRAPPERS = ("params_ema", "params", "state_dict", "model")
# Buffers the official code stores but mdn derives from the configuration.
_DERIVED = re.compile(r"(^|\.)attn_mask$")


class CheckpointError(ValueError):
    """A weights file that cannot be used, with the reason in the message."""


@dataclass
class LoadedWeights:
    """A model ready for inference and what is known about it.

    Attributes:
        model: The network (eval mode, CPU).
        config: Its architecture.
        source: The file it came from.
        kind: ``"mdn"`` for mdn's safetensors, ``"official"`` for an official checkpoint.
        card: The model card (mdn files), else an empty dict.
    """

    model: MaskedSwinIR
    config: SwinIRConfig
    source: Path
    kind: str
    card: dict[str, Any] = field(default_factory=dict)


def read_state(path: str | Path) -> dict[str, Tensor]:
    """Read a flat tensor dictionary from a safetensors or ``.pth`` file.

    Official files may wrap the state dict in ``{'params': ...}`` (or ``params_ema``,
    ``state_dict``) and may prefix names with ``module.``; both are undone.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    try:
        if path.suffix == ".safetensors":
            raw: Any = load_file(str(path), device="cpu")
        else:
            raw = torch.load(str(path), map_location="cpu", weights_only=True)
    except (SafetensorError, OSError, RuntimeError, EOFError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable weights file, truncated or corrupt "
                              f"({_first_line(exc)})") from exc
    except Exception as exc:  # the unpickler raises many types for hostile or odd files
        raise CheckpointError(f"{path}: refused to load ({type(exc).__name__}: "
                              f"{_first_line(exc)})") from exc
    return _unwrap(raw, path)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _unwrap(raw: Any, path: Path) -> dict[str, Tensor]:
    for _ in range(2):
        if isinstance(raw, dict):
            inner = next((raw[k] for k in _WRAPPERS if isinstance(raw.get(k), dict)), None)
            if inner is not None:
                raw = inner
    if not isinstance(raw, dict) or not raw:
        raise CheckpointError(f"{path}: holds no state dict")
    state = {}
    for key, value in raw.items():
        if not isinstance(value, Tensor):
            raise CheckpointError(f"{path}: entry {key!r} is not a tensor")
        state[key.removeprefix("module.")] = value
    return state


def infer_config(state: dict[str, Tensor]) -> SwinIRConfig:
    """Read the architecture off an official state dict's names and shapes."""
    try:
        first = state["conv_first.weight"]
        if first.shape[2:] != (1, 1):
            raise CheckpointError("conv_first is not 1x1: this is a plain SwinIR checkpoint, "
                                  "not the masked-training network")
        depths, heads = [], []
        layer = 0
        while f"layers.{layer}.residual_group.blocks.0.norm1.weight" in state:
            prefix = f"layers.{layer}.residual_group.blocks."
            depths.append(len({k[len(prefix):].split(".")[0] for k in state if k.startswith(prefix)}))
            heads.append(state[prefix + "0.attn.relative_position_bias_table"].shape[1])
            layer += 1
        index = state["layers.0.residual_group.blocks.0.attn.relative_position_index"]
        window = math.isqrt(index.shape[0])
        embed = first.shape[0]
        hidden = state["layers.0.residual_group.blocks.0.mlp.fc1.weight"].shape[0]
    except KeyError as exc:
        raise CheckpointError(f"not a masked SwinIR state dict: missing {exc.args[0]}") from exc
    if not depths:
        raise CheckpointError("not a masked SwinIR state dict: no Swin blocks found")
    masks = [v for k, v in state.items() if _DERIVED.search(k)]
    img_size = window * math.isqrt(masks[0].shape[0]) if masks else 64
    return SwinIRConfig(
        in_chans=first.shape[1], embed_dim=embed, depths=tuple(depths), num_heads=tuple(heads),
        window_size=window, mlp_ratio=hidden / embed, img_size=img_size,
        resi_connection="3conv" if "conv_after_body.4.weight" in state else "1conv")


def load_into(model: MaskedSwinIR, state: dict[str, Tensor]) -> None:
    """Load ``state`` into ``model``, requiring every weight to match by name and shape.

    Official ``attn_mask`` buffers are checked for shape and otherwise ignored (mdn
    rebuilds shift masks for every image size); ``relative_position_index`` must equal
    the one mdn derives.

    Raises:
        CheckpointError: Naming missing, unexpected and mis-shaped entries.
    """
    ours = model.state_dict()
    ws = model.cfg.window_size
    problems = []
    for key in sorted(k for k in state if _DERIVED.search(k)):
        shape = tuple(state[key].shape)
        if len(shape) != 3 or shape[1:] != (ws * ws, ws * ws):
            problems.append(f"{key} has shape {shape}")
    state = {k: v for k, v in state.items() if not _DERIVED.search(k)}
    missing = sorted(set(ours) - set(state))
    unexpected = sorted(set(state) - set(ours))
    wrong = [f"{k} is {tuple(state[k].shape)}, expected {tuple(ours[k].shape)}"
             for k in sorted(set(ours) & set(state)) if state[k].shape != ours[k].shape]
    bad_index = [k for k in ours if k.endswith("relative_position_index") and k in state
                 and state[k].shape == ours[k].shape and not torch.equal(state[k], ours[k])]
    for label, items in (("missing", missing), ("unexpected", unexpected),
                         ("mis-shaped", wrong + problems), ("inconsistent", bad_index)):
        if items:
            shown = ", ".join(items[:6]) + (f" (+{len(items) - 6} more)" if len(items) > 6 else "")
            raise CheckpointError(f"{len(items)} {label} weight(s): {shown}")
    model.load_state_dict(state, strict=True)


def load_official(path: str | Path, config: SwinIRConfig | None = None) -> LoadedWeights:
    """Load an official MaskedDenoising checkpoint (``.pth`` or safetensors)."""
    state = read_state(path)
    cfg = config or infer_config(state)
    model = MaskedSwinIR(cfg)
    try:
        load_into(model, state)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    return LoadedWeights(model.eval(), cfg, Path(path), "official")


def save_weights(model: MaskedSwinIR, path: str | Path, card: dict[str, Any] | None = None,
                 *, overwrite: bool = False) -> Path:
    """Save weights as safetensors (config in the metadata) plus a JSON model card beside.

    Both files are written atomically; an existing file is kept unless ``overwrite``.

    Returns:
        The path of the safetensors file.
    """
    path = Path(path)
    card_path = path.with_suffix(".json")
    if not overwrite:
        for target in (path, card_path):
            if target.exists():
                raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    card = {**(card or {}), "format": FORMAT_TAG, "config": model.cfg.to_dict()}
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT_TAG, "config": model.cfg.to_json()}
    atomic_replace(path, lambda tmp: save_file(tensors, tmp, metadata=meta))
    atomic_replace(card_path, lambda tmp: Path(tmp).write_text(json.dumps(card, indent=2) + "\n"))
    return path


def load_weights(path: str | Path) -> LoadedWeights:
    """Load any supported weights file: mdn safetensors or an official checkpoint."""
    path = Path(path)
    meta: dict[str, str] = {}
    if path.suffix == ".safetensors" and path.is_file():
        try:
            from safetensors import safe_open

            with safe_open(str(path), "pt") as handle:
                meta = handle.metadata() or {}
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"{path}: not a readable safetensors file "
                                  f"({_first_line(exc)})") from exc
    if meta.get("format") != FORMAT_TAG:
        return load_official(path)
    try:
        cfg = SwinIRConfig.from_dict(json.loads(meta["config"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: bad model config in metadata ({exc})") from exc
    model = MaskedSwinIR(cfg)
    try:
        load_into(model, read_state(path))
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    card_path = path.with_suffix(".json")
    card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    return LoadedWeights(model.eval(), cfg, path, "mdn", card)
