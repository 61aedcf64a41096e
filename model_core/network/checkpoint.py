"""Loading and saving weights: official MaskedDenoising checkpoints and mdn's own format.

Nothing here unpickles arbitrary objects: ``.pth`` files go through
``torch.load(weights_only=True)`` and mdn's own files are safetensors.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import pickle
import pickletools
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from model_core.fileio import atomic_replace
from model_core.network.config import MAX_GROUPS, SwinIRConfig
from model_core.network.swinir import MaskedSwinIR

LOG = logging.getLogger(__name__)
FORMAT_TAG = "mdn-swinir/1"
# "ema" picks the EMA weights of an mdn training checkpoint (last.ckpt) over its "model".
_WRAPPERS = ("params_ema", "params", "ema", "state_dict", "model")
# Buffers the official code stores but mdn derives from the configuration.
_DERIVED = re.compile(r"(^|\.)attn_mask$")
_BLOCK0 = "layers.0.residual_group.blocks.0."
# Model cards are a few kilobytes; a bigger sidecar is not one.
MAX_CARD_BYTES = 4 * 1024 * 1024
# Globals a weights-only load accepts; any other global a pickle names is reported.
_SAFE_GLOBALS = ("torch.", "collections.OrderedDict")
_SAFE_ADVICE = "mdn never unpickles code. Convert it to safetensors with the tool that made it."


class CheckpointError(ValueError):
    """A weights file that cannot be used, with the reason in the message."""


@dataclass
class LoadedWeights:
    """A model ready for inference and what is known about it.

    Attributes:
        model: The network (eval mode, CPU).
        config: Its architecture.
        source: The file it came from.
        kind: ``"mdn"`` for mdn's safetensors, ``"official"`` for an official checkpoint,
            ``"training"`` for the EMA weights of an mdn training checkpoint (``last.ckpt``).
        card: The model card (mdn files; what a training checkpoint tells), else an empty dict.
    """

    model: MaskedSwinIR
    config: SwinIRConfig
    source: Path
    kind: str
    card: dict[str, Any] = field(default_factory=dict)


def sniff_format(path: str | Path) -> str | None:
    """``"safetensors"``, ``"torch"`` or None, from a file's first bytes (not its name).

    A safetensors file starts with its header length (8 bytes, little-endian) and the
    header's ``{``; a PyTorch file is a zip archive (``PK``) or a pickle (``0x80``).
    """
    with Path(path).open("rb") as fh:
        head = fh.read(9)
    if len(head) == 9 and head[8:9] == b"{":
        return "safetensors"
    if head[:2] == b"PK" or head[:1] == b"\x80":
        return "torch"
    return None


def read_state(path: str | Path) -> dict[str, Tensor]:
    """Read a flat tensor dictionary from a safetensors or PyTorch file.

    Official files may wrap the state dict in ``{'params': ...}`` (or ``params_ema``,
    ``state_dict``) and may prefix names with ``module.``; both are undone.

    Raises:
        CheckpointError: Naming the file and what is wrong with it.
    """
    path = Path(path)
    return _unwrap(_read_raw(path), path)


def _read_raw(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    kind = sniff_format(path)
    if kind is None:
        raise CheckpointError(f"{path}: not a PyTorch or safetensors weights file")
    try:
        if kind == "safetensors":
            return load_file(str(path), device="cpu")
        # An open file, not a name: torch.load reads any "*.safetensors" name as safetensors.
        with path.open("rb") as fh, warnings.catch_warnings():
            # torch's note on pickle protocols says nothing useful here.
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            return torch.load(fh, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # what a weights-only load raises for what it refuses
        raise CheckpointError(_refusal(path, exc)) from exc
    except (SafetensorError, OSError, RuntimeError, EOFError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable weights file, truncated or corrupt "
                              f"({_first_line(exc)})") from exc
    except Exception as exc:  # the unpickler raises many types for hostile or odd files
        raise CheckpointError(f"{path}: refused to load ({type(exc).__name__}: "
                              f"{_first_line(exc)})") from exc


def _refusal(path: Path, exc: Exception) -> str:
    """Say why a weights-only load refused ``path``, without torch's advice to load it unsafely."""
    text = str(exc)
    names = re.findall(r"GLOBAL ([\w.]+)", text)
    if not names and sniff_format(path) == "torch" and not _is_zip(path):
        names = _pickled_globals(path)
    if names:
        shown = ", ".join(dict.fromkeys(names))[:200]
        return (f"{path}: refused: it holds Python objects a safe load does not allow ({shown}); "
                + _SAFE_ADVICE)
    parts = (p.strip() for p in re.split(r"\n\s*\n", text))
    boilerplate = ("Weights only load failed", "Check the documentation", "Please file an issue")
    reason = next((p.splitlines()[0] for p in parts if p and not p.startswith(boilerplate)), "")
    return (f"{path}: refused: a pickle that a safe load cannot read, corrupt or holding Python "
            f"objects ({reason[:200] or 'no reason given'}); {_SAFE_ADVICE}")


def _is_zip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"PK"


def _pickled_globals(path: Path) -> list[str]:
    """The globals a plain pickle file imports, read with ``pickletools`` (nothing is executed)."""
    names: list[str] = []
    strings: list[str] = []
    try:
        with path.open("rb") as fh:
            for _ in range(4):  # legacy torch files are several pickles in a row
                for op, arg, _pos in itertools.islice(pickletools.genops(fh), 100_000):
                    if op.name in ("GLOBAL", "INST"):
                        names.append(str(arg).replace(" ", "."))
                    elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                        names.append(".".join(strings[-2:]))
                    elif isinstance(arg, str):
                        strings.append(arg)
    except (ValueError, EOFError):  # the end of the pickles, or not a pickle after all
        pass
    return [n for n in names if not n.startswith(_SAFE_GLOBALS)]


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
        if not isinstance(key, str) or not isinstance(value, Tensor):
            raise CheckpointError(f"{path}: entry {key!r} is not a named tensor")
        state[key.removeprefix("module.")] = value
    return state


def _training_card(raw: Any) -> dict[str, Any] | None:
    """What an mdn training checkpoint (``last.ckpt``) tells of its weights; None for other files."""
    if not (isinstance(raw, dict) and isinstance(raw.get("ema"), dict)
            and isinstance(raw.get("train_config"), str)):
        return None
    card: dict[str, Any] = {"note": "EMA weights of an mdn training checkpoint; a finished run exports "
                                    "them with: python -m model_core.train.publish RUN --name N --to DIR"}
    train_config = _json_or_none(raw["train_config"])
    if isinstance(train_config, dict):
        card["train_config"] = train_config
    init = _json_or_none(raw.get("init"))
    if isinstance(init, str) and init:
        card["init"] = init
    if isinstance(raw.get("iteration"), int):
        card["iterations"] = raw["iteration"]
        # A run fine-tuned with --init carries the stages before it: the totals count them.
        history = _earlier_stages(raw.get("history"))
        if history:
            card["history"] = history
            card["total_iterations"] = raw["iteration"] + sum(stage["iterations"] for stage in history)
            if isinstance(raw.get("elapsed"), float):
                earlier = sum(s.get("wall_time_s", 0) for s in history
                              if isinstance(s.get("wall_time_s", 0), (int, float)))
                card["total_wall_time_s"] = round(raw["elapsed"] + earlier, 1)
    return card


def _json_or_none(text: Any) -> Any:
    """``text`` parsed as JSON; None where it is not a string of valid JSON."""
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _earlier_stages(text: Any) -> list[dict[str, Any]]:
    """The earlier training stages a checkpoint lists (JSON text); [] where it lists none or garbles them."""
    stages = _json_or_none(text)
    if not isinstance(stages, list):
        return []
    return [s for s in stages if isinstance(s, dict) and isinstance(s.get("iterations"), int)]


def _shape(state: dict[str, Tensor], key: str, ndim: int) -> tuple[int, ...]:
    shape = tuple(state[key].shape)
    if len(shape) != ndim:
        raise CheckpointError(f"{key} has shape {shape}, expected {ndim} dimensions")
    return shape


def _groups(state: dict[str, Tensor]) -> tuple[list[int], list[int]]:
    """Blocks and heads of each residual group, read off the names and bias tables."""
    depths: list[int] = []
    heads: list[int] = []
    # One group past the limit is enough for the config to refuse the count.
    while len(depths) <= MAX_GROUPS:
        prefix = f"layers.{len(depths)}.residual_group.blocks."
        if prefix + "0.norm1.weight" not in state:
            break
        depths.append(len({k[len(prefix):].split(".")[0] for k in state if k.startswith(prefix)}))
        heads.append(_shape(state, prefix + "0.attn.relative_position_bias_table", 2)[1])
    if not depths:
        raise CheckpointError("not a masked SwinIR state dict: no Swin blocks found")
    return depths, heads


def infer_config(state: dict[str, Tensor]) -> SwinIRConfig:
    """Read the architecture off an official state dict's names and shapes.

    Raises:
        CheckpointError: The names or shapes are not those of a usable masked SwinIR.
    """
    try:
        first = _shape(state, "conv_first.weight", 4)
        if first[2:] != (1, 1):
            raise CheckpointError("conv_first is not 1x1: this is a plain SwinIR checkpoint, "
                                  "not the masked-training network")
        depths, heads = _groups(state)
        key = _BLOCK0 + "attn.relative_position_index"
        index = _shape(state, key, 2)
        window = math.isqrt(index[0])
        if index[0] != index[1] or window * window != index[0] or window < 2:
            raise CheckpointError(f"{key} has shape {index}, not (w*w, w*w) for a window side w >= 2")
        hidden = _shape(state, _BLOCK0 + "mlp.fc1.weight", 2)[0]
        masks = [k for k in state if _DERIVED.search(k)]
        img_size = window * math.isqrt(_shape(state, masks[0], 3)[0]) if masks else 64
    except KeyError as exc:
        raise CheckpointError(f"not a masked SwinIR state dict: missing {exc.args[0]}") from exc
    try:
        return SwinIRConfig(
            in_chans=first[1], embed_dim=first[0], depths=tuple(depths), num_heads=tuple(heads),
            window_size=window, mlp_ratio=hidden / first[0], img_size=img_size,
            resi_connection="3conv" if "conv_after_body.4.weight" in state else "1conv")
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"the architecture its shapes give is not usable: {exc}") from exc


def _listed(items: list[str]) -> str:
    return ", ".join(items[:6]) + (f" (+{len(items) - 6} more)" if len(items) > 6 else "")


def _match(state: dict[str, Tensor], expected: dict[str, tuple[int, ...]],
           window: int) -> dict[str, Tensor]:
    """Compare names and shapes; return ``state`` without the derived ``attn_mask`` buffers."""
    problems = []
    for key in sorted(k for k in state if _DERIVED.search(k)):
        shape = tuple(state[key].shape)
        if len(shape) != 3 or shape[1:] != (window * window, window * window):
            problems.append(f"{key} has shape {shape}")
    state = {k: v for k, v in state.items() if not _DERIVED.search(k)}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{k} is {tuple(state[k].shape)}, expected {expected[k]}"
             for k in sorted(set(expected) & set(state)) if tuple(state[k].shape) != expected[k]]
    for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", wrong + problems)):
        if items:
            raise CheckpointError(f"{len(items)} {label} weight(s): {_listed(items)}")
    return state


def _check_values(state: dict[str, Tensor], ours: dict[str, Tensor]) -> None:
    """Refuse weights that are not floating point where the model's are, or that are not finite.

    ``load_state_dict`` would cast integers silently (a network of rounded weights that runs
    and gives a poor image), and NaN or infinite weights give a NaN image that looks like a
    fault of the input.
    """
    wrong = [f"{k} is {str(state[k].dtype).removeprefix('torch.')}" for k in sorted(state)
             if ours[k].is_floating_point() and not state[k].is_floating_point()]
    if wrong:
        raise CheckpointError(f"{len(wrong)} weight(s) not floating point: {_listed(wrong)}; "
                              "weights must be float32, float16 or bfloat16")
    bad = [k for k in sorted(state) if state[k].is_floating_point() and not torch.isfinite(state[k]).all()]
    if bad:
        raise CheckpointError(f"{len(bad)} weight(s) hold NaN or infinite values: {_listed(bad)}")


def load_into(model: MaskedSwinIR, state: dict[str, Tensor]) -> None:
    """Load ``state`` into ``model``, requiring every weight to match by name and shape.

    Official ``attn_mask`` buffers are checked for shape and otherwise ignored (mdn
    rebuilds shift masks for every image size); ``relative_position_index`` must equal
    the one mdn derives.

    Raises:
        CheckpointError: Naming missing, unexpected and mis-shaped entries.
    """
    ours = model.state_dict()
    state = _match(state, {k: tuple(v.shape) for k, v in ours.items()}, model.cfg.window_size)
    _check_values(state, ours)
    bad_index = [k for k in ours if k.endswith("relative_position_index")
                 and not torch.equal(state[k].to(ours[k].device), ours[k])]
    if bad_index:
        raise CheckpointError(f"{len(bad_index)} inconsistent weight(s): {_listed(bad_index)}")
    model.load_state_dict(state, strict=True)


def _estimated_numel(cfg: SwinIRConfig) -> int:
    """An upper bound of the state-dict elements ``cfg`` implies, computed without building."""
    e, ws = cfg.embed_dim, cfg.window_size
    hidden = int(e * cfg.mlp_ratio)
    block = 4 * e * e + 2 * e * hidden + 10 * e + hidden + ws**4
    blocks = sum(d * (block + h * (2 * ws - 1) ** 2) for d, h in zip(cfg.depths, cfg.num_heads, strict=True))
    return blocks + (len(cfg.depths) + 1) * (9 * e * e + 3 * e) + 10 * e * cfg.in_chans + 4 * e


def _expected_shapes(cfg: SwinIRConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of the state dict ``cfg`` implies, from a model on the meta device (no memory)."""
    with torch.device("meta"):
        model = MaskedSwinIR(cfg)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _build(cfg: SwinIRConfig, state: dict[str, Tensor], path: Path) -> MaskedSwinIR:
    """A model of ``cfg`` holding ``state``; a mismatch is found before any big allocation."""
    try:
        # A model much bigger than the file cannot match it: say what differs from a model
        # on the meta device. (Only then: its first build costs seconds of torch imports.)
        if _estimated_numel(cfg) > 2 * sum(v.numel() for v in state.values()) + 1_000_000:
            _match(state, _expected_shapes(cfg), cfg.window_size)
        model = MaskedSwinIR(cfg)
        load_into(model, state)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    return model.eval()


def load_official(path: str | Path, config: SwinIRConfig | None = None) -> LoadedWeights:
    """Load an official MaskedDenoising checkpoint (``.pth`` or safetensors).

    The EMA weights of an mdn training checkpoint (``last.ckpt``) load too, as kind
    ``"training"`` with a card of its training config.

    Raises:
        CheckpointError: Naming the file and what is wrong with it.
    """
    path = Path(path)
    raw = _read_raw(path)
    state = _unwrap(raw, path)
    try:
        cfg = config or infer_config(state)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    card = _training_card(raw)
    kind = "official" if card is None else "training"
    return LoadedWeights(_build(cfg, state, path), cfg, path, kind, card or {})


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
    """Load any supported weights file: mdn safetensors or an official checkpoint.

    The format is read from the file's first bytes, whatever its name.

    Raises:
        CheckpointError: Naming the file and what is wrong with it.
    """
    path = Path(path)
    meta: dict[str, str] = {}
    if path.is_file() and sniff_format(path) == "safetensors":
        try:
            with safe_open(str(path), "pt") as handle:
                meta = handle.metadata() or {}
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"{path}: not a readable safetensors file "
                                  f"({_first_line(exc)})") from exc
    if meta.get("format") != FORMAT_TAG:
        return load_official(path)
    try:
        cfg = SwinIRConfig.from_dict(json.loads(meta["config"]))
    except (KeyError, ValueError, TypeError, RecursionError) as exc:
        raise CheckpointError(f"{path}: bad model config in metadata ({_first_line(exc)})") from exc
    model = _build(cfg, read_state(path), path)
    return LoadedWeights(model, cfg, path, "mdn", read_card(path))


def read_card(path: str | Path) -> dict[str, Any]:
    """The JSON model card beside the weights file ``path`` (same name, ``.json``), else {}.

    The card only describes the weights, so one that cannot be read or is not a JSON
    object is ignored with a logged warning that names it, and the weights stay usable.
    """
    card_path = Path(path).with_suffix(".json")
    if not card_path.is_file():
        return {}
    try:
        if card_path.stat().st_size > MAX_CARD_BYTES:
            raise ValueError(f"over {MAX_CARD_BYTES // 2**20} MiB")
        card = json.loads(card_path.read_text(encoding="utf-8"))
        if not isinstance(card, dict):
            raise ValueError(f"a JSON {type(card).__name__}, not an object")
    except (OSError, ValueError, RecursionError) as exc:
        LOG.warning("%s: model card ignored (%s); settings it would give, such as the training "
                    "attention-mask ratio, take their defaults", card_path, _first_line(exc))
        return {}
    return card
