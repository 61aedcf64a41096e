"""The training loop: noise and masks on the fly, L1 loss, Adam, EMA, checkpoints."""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader

from model_core.device import autocast_context, cpu_has_bf16, cpu_name
from model_core.fileio import atomic_replace
from model_core.network import MaskedSwinIR, apply_input_mask, build_model
from model_core.network.checkpoint import load_into, load_weights
from model_core.network.config import SwinIRConfig
from model_core.noise import NoiseSpec
from model_core.train.config import MODEL_SIZES, TrainConfig
from model_core.train.data import PatchDataset, SequentialSamples

LOG = logging.getLogger(__name__)
CKPT_NAME = "last.ckpt"
# Validation noises: the paper's training noise and the unseen noises at the levels the paper's
# figure and docs/RESULTS.md feature; each has a log.csv column (:func:`val_column`).
VAL_SEEN = NoiseSpec("gaussian", 15)
VAL_UNSEEN = tuple(NoiseSpec.parse(t) for t in ("poisson:2.5", "speckle:0.024", "mixture:2",
                                               "correlated:50"))


def val_column(spec: NoiseSpec) -> str:
    """The ``log.csv`` column of one validation noise, e.g. ``val_poisson2.5_psnr``."""
    return f"val_{spec.kind}{spec.level:g}_psnr"


@dataclass
class TrainState:
    """What a checkpoint restores."""

    model: MaskedSwinIR
    ema: MaskedSwinIR
    optimizer: torch.optim.Adam
    scheduler: torch.optim.lr_scheduler.LambdaLR
    iteration: int = 0
    elapsed: float = 0.0
    world: int = 1
    precision: str = "fp32"
    history: list[dict[str, Any]] = field(default_factory=list)
    # The weights the run started from (init_name(--init)); None from scratch, "" not recorded
    # (checkpoints written before the field; mdn's recipes then always started from weights).
    init: str | None = None
    interrupted: bool = False  # stopped by Ctrl-C or SIGTERM before the last iteration
    mid_step: bool = False  # an update is under way: model, optimiser, EMA and count may disagree


def new_state(cfg: TrainConfig, device: torch.device) -> TrainState:
    """Fresh model, EMA copy, optimiser and scheduler for ``cfg``."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model_config()).to(device)
    ema = build_model(cfg.model_config()).to(device)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, LrSchedule.of(cfg))
    return TrainState(model, ema, optimizer, scheduler)


@dataclass(frozen=True)
class LrSchedule:
    """Learning-rate factor at an iteration: linear warm-up, multi-step decay, cosine tail.

    The factor is ``min(1, (it + 1) / warmup)`` times ``gamma`` to the number of milestones
    passed, times a half cosine from 1 to 0 over the last ``cosine_tail`` share of
    ``iterations``. A warm-up matters when fine-tuning (``--init``): Adam's first steps move
    every weight by about the learning rate whatever its gradient, which undoes part of a
    trained model. A cosine tail makes a short run end at the end of its schedule.
    """

    warmup: int
    milestones: tuple[int, ...]
    gamma: float
    iterations: int = 0
    cosine_tail: float = 0.0

    @classmethod
    def of(cls, cfg: TrainConfig) -> LrSchedule:
        return cls(cfg.warmup, tuple(cfg.milestones), cfg.gamma, cfg.iterations, cfg.cosine_tail)

    def __call__(self, iteration: int) -> float:
        ramp = min(1.0, (iteration + 1) / self.warmup) if self.warmup > 0 else 1.0
        factor = ramp * self.gamma ** sum(iteration >= m for m in self.milestones)
        tail = self.cosine_tail * self.iterations
        start = self.iterations - tail
        if tail > 0 and iteration >= start:
            factor *= 0.5 * (1 + math.cos(math.pi * min(1.0, (iteration - start) / tail)))
        return factor


def warm_start(state: TrainState, weights: str | Path) -> None:
    """Initialise model and EMA from weights: a shipped name (``masked``), our safetensors, an
    official checkpoint or a training checkpoint (``last.ckpt``, its EMA weights)."""
    from model_core.weights import resolve_weights  # a light module, but only needed here

    loaded = load_weights(resolve_weights(os.fspath(weights)))
    ours = state.model.cfg
    # img_size only shapes official attn_mask buffers, which mdn rebuilds: not part of the weights.
    if dataclasses.replace(loaded.config, img_size=ours.img_size) != ours:
        raise ValueError(f"{weights}: weights of {_size_name(loaded.config)}, but the run is "
                         f"{_size_name(ours)} (choose the size with --size)")
    sd = loaded.model.state_dict()
    load_into(state.model, sd)
    load_into(state.ema, sd)
    state.history = lineage(loaded.card)
    state.init = init_name(weights)


def init_name(weights: str | Path) -> str:
    """How a card names the weights a run started from: a shipped name as given, a file by its
    folder and name (a full local path would mean nothing on another machine)."""
    from model_core.weights import SHIPPED_NAMES

    text = os.fspath(weights)
    if text in SHIPPED_NAMES:
        return text
    path = Path(text)
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def _size_name(cfg: SwinIRConfig) -> str:
    """``"the lite size"``, or the architecture in words when it is none of the sizes."""
    for name, make in MODEL_SIZES.items():
        if dataclasses.replace(cfg, img_size=make().img_size) == make():
            return f"the {name} size"
    return (f"no mdn size (embed {cfg.embed_dim}, depths {list(cfg.depths)}, "
            f"window {cfg.window_size})")


# Card fields that describe one training stage.
_STAGE_FIELDS = ("iterations", "batch", "patches_seen", "data", "hardware", "precision", "wall_time_s",
                 "init")
_STAGE_RECIPE = ("lr", "warmup", "milestones", "ema_decay", "seed")


def lineage(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The training stages behind the weights of a model card, oldest first.

    A model fine-tuned with ``--init`` carries the stages of the weights it started from, so
    a card tells the whole budget spent on it. Cards without training fields (official
    checkpoints) give an empty history.
    """
    if "iterations" not in card:
        return []
    recipe = card.get("train_config", {})
    stage = {k: card[k] for k in _STAGE_FIELDS if k in card}
    stage.update({k: recipe[k] for k in _STAGE_RECIPE if k in recipe})
    return [*card.get("history", []), stage]


def budget_totals(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Iterations, patches and wall time summed over training stages."""
    return {f"total_{k}": round(sum(stage.get(k, 0) for stage in history), 1)
            for k in ("iterations", "patches_seen", "wall_time_s")}


def save_checkpoint(state: TrainState, cfg: TrainConfig, path: Path,
                    sources: dict[str, str | None] | None = None) -> None:
    """Atomically write everything needed to resume exactly.

    Args:
        sources: The run's ``data`` and ``val`` folders as given, for ``--resume`` without them.
    """
    payload = {
        "model": state.model.state_dict(), "ema": state.ema.state_dict(),
        "optimizer": state.optimizer.state_dict(), "scheduler": state.scheduler.state_dict(),
        "iteration": state.iteration, "elapsed": state.elapsed, "train_config": cfg.to_json(),
        "history": json.dumps(state.history), "sources": json.dumps(sources or {}),
        "init": json.dumps(state.init),
    }
    atomic_replace(path, lambda tmp: torch.save(payload, tmp))


def _read_checkpoint(path: Path) -> dict[str, Any]:
    """The payload of a training checkpoint (no arbitrary unpickling: ``weights_only``)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        if exc.filename is not None:  # missing, unreadable: the error names the file
            raise
        raise ValueError(f"{path}: damaged training checkpoint ({exc.strerror or exc}); start over "
                         "with --overwrite") from exc
    except Exception as exc:  # a damaged file fails anywhere in the unpickler (KeyError, ...)
        raise ValueError(f"{path}: damaged, or not a training checkpoint; start over with "
                         "--overwrite") from exc
    if not isinstance(payload, dict) or "train_config" not in payload:
        raise ValueError(f"{path}: not an mdn training checkpoint")
    return payload


def checkpoint_run(path: Path) -> tuple[TrainConfig, dict[str, str | None]]:
    """The training configuration a checkpoint was written with, and its data and validation
    folders (``{"data": ..., "val": ...}``; empty for checkpoints of earlier mdn versions)."""
    payload = _read_checkpoint(path)
    sources = json.loads(payload.get("sources", "{}"))
    return TrainConfig.from_dict(json.loads(payload["train_config"])), sources


def load_checkpoint(state: TrainState, cfg: TrainConfig, path: Path) -> None:
    """Restore ``state`` from ``path``."""
    payload = _read_checkpoint(path)
    saved = TrainConfig.from_dict(json.loads(payload["train_config"]))
    if saved.model_size != cfg.model_size or saved.preset != cfg.preset:
        raise ValueError(f"{path}: checkpoint is {saved.preset}/{saved.model_size}, "
                         f"run is {cfg.preset}/{cfg.model_size}")
    state.model.load_state_dict(payload["model"])
    state.ema.load_state_dict(payload["ema"])
    state.optimizer.load_state_dict(payload["optimizer"])
    scheduler = dict(payload["scheduler"])
    # Checkpoints of mdn before the warm-up option hold a MultiStepLR state; its counters carry over.
    scheduler.setdefault("lr_lambdas", [None] * len(state.optimizer.param_groups))
    state.scheduler.load_state_dict(scheduler)
    # The schedule of the current config applies (equal to the saved one unless changed).
    schedule = LrSchedule.of(cfg)
    state.scheduler.lr_lambdas = [schedule] * len(state.optimizer.param_groups)
    for group, base in zip(state.optimizer.param_groups, state.scheduler.base_lrs, strict=True):
        group["lr"] = base * schedule(state.scheduler.last_epoch)
    state.scheduler._last_lr = [group["lr"] for group in state.optimizer.param_groups]
    state.iteration = int(payload["iteration"])
    state.elapsed = float(payload["elapsed"])
    state.history = json.loads(payload.get("history", "[]"))
    state.init = json.loads(payload["init"]) if "init" in payload else ""


def make_inputs(clean: Tensor, cfg: TrainConfig, gen: torch.Generator, iteration: int = 0) -> Tensor:
    """Noisy (and, for the masked preset, input-masked) network inputs for a clean batch.

    The noisy patch is clipped to [0, 1] before the input mask, as in the official pipeline
    (and as every test image is). Under a dense share the first patches of the batch, its
    share at ``iteration`` in expectation (stochastic rounding), keep every pixel; under
    ``mask_ramp`` the drawn drop ratios move towards ``mask_ramp_start`` early in the run.
    The draws from ``gen`` are the same whatever ``iteration``.

    Args:
        clean: Clean patches (B, 3, H, W) in [0, 1].
        cfg: The run's configuration.
        gen: Randomness of this iteration (:func:`step_generator`).
        iteration: The run's iteration (0-based), for the dense-share and mask schedules.
    """
    noise = torch.randn(clean.shape, generator=gen, device=clean.device) * (cfg.sigma / 255)
    noisy = (clean + noise).clamp_(0, 1)
    if cfg.input_mask is None:
        return noisy
    b = clean.shape[0]
    low, high = (round(v * 100) for v in cfg.input_mask)
    ratios = torch.randint(low, high + 1, (b,), generator=gen, device=clean.device).float() / 100
    ramp = cfg.mask_ramp_at(iteration)
    if ramp < 1:
        ratios = cfg.mask_ramp_start + (ratios - cfg.mask_ramp_start) * ramp
    if cfg.dense_share or cfg.dense_final:  # drawn whenever the run has a dense share
        jitter = float(torch.rand((), generator=gen, device=clean.device))
        dense = min(b, int(cfg.dense_share_at(iteration) * b + jitter))
        ratios[:dense] = 0
    masked, _ = apply_input_mask(noisy, ratios, gen)
    return masked


def step_generator(cfg: TrainConfig, iteration: int, rank: int, device: torch.device) -> torch.Generator:
    """Noise and mask randomness of one iteration: a pure function of (seed, iteration, rank)."""
    gen = torch.Generator(device=device)
    gen.manual_seed((cfg.seed * 1_000_003 + iteration) * 64 + rank)
    return gen


def train_step(state: TrainState, net: torch.nn.Module, clean: Tensor, cfg: TrainConfig,
               gen: torch.Generator, precision: str) -> float:
    """One optimisation step at ``state.iteration``; returns the L1 loss."""
    inputs = make_inputs(clean, cfg, gen, state.iteration)
    with autocast_context(clean.device, precision):
        out = net(inputs, attn_mask_ratio=cfg.attn_mask_ratio, generator=gen)
    loss = F.l1_loss(out.float(), clean)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    # From here until the loop counts the iteration, a checkpoint would mix two iterations.
    state.mid_step = True
    state.optimizer.step()
    state.scheduler.step()
    update_ema(state.ema, state.model, ema_decay_at(cfg.ema_decay, state.iteration))
    return float(loss.detach())


def ema_decay_at(decay: float, iteration: int) -> float:
    """EMA decay with a warm-up: ``min(decay, (1 + it) / (10 + it))``.

    Without it the average keeps ``decay**it`` of the random initial weights, which
    spoils short runs (0.999**1000 is still 37 %); long runs are unaffected.
    """
    return min(decay, (1 + iteration) / (10 + iteration))


@torch.no_grad()
def update_ema(ema: MaskedSwinIR, model: MaskedSwinIR, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, for every parameter."""
    ema_params = list(ema.parameters())
    torch._foreach_lerp_(ema_params, [p.detach() for p in model.parameters()], 1 - decay)


def batches(cfg: TrainConfig, data_dir: Path, start: int, rank: int, world: int) -> Iterator[Tensor]:
    """Endless training batches starting at iteration ``start``."""
    dataset = PatchDataset(data_dir, cfg.patch, cfg.seed)
    sampler = SequentialSamples(start, cfg.batch, rank, world)
    loader = DataLoader(dataset, batch_size=cfg.batch, sampler=sampler, num_workers=cfg.workers,
                        persistent_workers=cfg.workers > 0, prefetch_factor=4 if cfg.workers else None,
                        worker_init_fn=_own_process_group,
                        pin_memory=torch.cuda.is_available())
    yield from loader


def _own_process_group(worker_id: int) -> None:
    """A DataLoader worker moves to a process group of its own.

    ``timeout``, job schedulers and Ctrl-C signal the whole process group. A worker killed
    that way makes the main process fail with "DataLoader worker is killed by signal"
    before it can export its weights. Out of the group, the worker only hears from the
    main process, which stops in order and shuts it down (and it exits if the main process
    dies). Ignoring the signals instead would make ``terminate()`` of a stuck worker a no-op.
    """
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)


def machine_description(device: torch.device) -> str:
    """Short human description of the hardware, for model cards."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    bf16 = "native bf16" if cpu_has_bf16() else "no native bf16"
    return f"{cpu_name()} CPU ({bf16}), {threads} thread{'s' if threads != 1 else ''}"


class CsvLog:
    """Append-only CSV log of training and validation numbers.

    Args:
        path: The CSV file.
        restart: Start a new file (a new run) instead of appending (a resumed one).
        resumed_at: For a resumed run, the checkpoint's iteration: rows after it (logged
            before a hard stop, after that checkpoint) are dropped, as the run repeats them.
    """

    FIELDS = ("iteration", "elapsed_s", "loss", "lr",
              *(val_column(spec) for spec in (VAL_SEEN, *VAL_UNSEEN)), "val_unseen_psnr")

    def __init__(self, path: Path, *, restart: bool = False, resumed_at: int | None = None) -> None:
        self.path = path
        if restart or not path.exists():
            atomic_replace(path, lambda tmp: self._write(tmp, []))
        elif resumed_at is not None:
            with path.open(newline="") as fh:
                header, *rows = list(csv.reader(fh)) or [[]]
            kept = [r for r in rows if r and r[0].isdigit() and int(r[0]) <= resumed_at]
            if len(kept) != len(rows) or not header:  # an empty file gets its header back
                atomic_replace(path, lambda tmp: self._write(tmp, kept, header or None))

    def _write(self, target: str, rows: list[list[str]], header: list[str] | None = None) -> None:
        with open(target, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header or self.FIELDS)
            writer.writerows(rows)

    def write(self, **row: Any) -> None:
        with self.path.open("a", newline="") as fh:
            csv.writer(fh).writerow([row.get(k, "") for k in self.FIELDS])


def is_main_process() -> bool:
    """True outside DDP and on rank 0."""
    return not dist.is_initialized() or dist.get_rank() == 0
