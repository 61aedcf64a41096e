"""Drive a training run: resume, loop with progress, validation, checkpoints, export."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from model_core.device import autocast_context, pick_device, resolve_precision
from model_core.imageio import ImageReadError, read_image
from model_core.metrics import psnr
from model_core.network import MaskedSwinIR
from model_core.network.checkpoint import save_weights
from model_core.noise import apply_noise
from model_core.train.config import TrainConfig
from model_core.train.data import PatchDataset, list_images
from model_core.train.loop import (
    CKPT_NAME,
    VAL_SEEN,
    VAL_UNSEEN,
    CsvLog,
    TrainState,
    batches,
    budget_totals,
    is_main_process,
    lineage,
    load_checkpoint,
    machine_description,
    new_state,
    save_checkpoint,
    step_generator,
    train_step,
    val_column,
    warm_start,
)
from model_core.train.signals import StopRequest

LOG = logging.getLogger(__name__)
# What a run writes in its folder; a new run replaces none of them unless asked to.
RUN_FILES = (CKPT_NAME, "model.safetensors")


@dataclass(frozen=True)
class RunPaths:
    """Where a run reads and writes."""

    out_dir: Path
    data_dir: Path
    val_dir: Path | None

    @property
    def checkpoint(self) -> Path:
        return self.out_dir / CKPT_NAME

    def sources(self) -> dict[str, str | None]:
        """The data and validation folders, as saved in checkpoints: absolute, so that a run
        resumes from any working folder."""
        val = None if self.val_dir is None else str(self.val_dir.resolve())
        return {"data": str(self.data_dir.resolve()), "val": val}


def load_validation_images(val_dir: Path, cfg: TrainConfig) -> list[np.ndarray]:
    """The first ``val_limit`` usable images of ``val_dir``, centre-cropped to ``val_crop``.

    Unreadable files, and images with a side under the attention window (the network pads
    each side up to a multiple of the window by reflection, which needs that much), are
    skipped with a warning, like unusable training images.

    Raises:
        FileNotFoundError: The folder is missing or holds no image files.
        ValueError: None of its images is usable.
    """
    images = []
    window = cfg.model_config().window_size
    for path in list_images(val_dir):
        if len(images) == cfg.val_limit:
            break
        try:
            img = read_image(path).rgb
        except ImageReadError as exc:
            LOG.warning("skipping validation image: %s", exc)
            continue
        if min(img.shape[:2]) < window:
            LOG.warning("skipping validation image %s: smaller than the %d px attention window",
                        path, window)
            continue
        if cfg.val_crop:
            h, w = img.shape[:2]
            y, x = max(0, (h - cfg.val_crop) // 2), max(0, (w - cfg.val_crop) // 2)
            img = img[y:y + cfg.val_crop, x:x + cfg.val_crop]
        images.append(np.ascontiguousarray(img, dtype=np.float32))
    if not images:
        raise ValueError(f"{val_dir}: no usable validation image (unreadable, or under "
                         f"{window} px)")
    return images


@torch.no_grad()
def validate(model: MaskedSwinIR, cfg: TrainConfig, images: list[np.ndarray], device: torch.device,
             precision: str) -> dict[str, float]:
    """Mean PSNR on Gaussian noise (sigma 15, the paper's training noise) and on each unseen noise.

    ``images`` from :func:`load_validation_images`, fixed noise seeds, the model's training
    attention-mask ratio (the paper also masks at inference).

    Returns:
        ``{column: mean PSNR}`` by :func:`val_column`, the training noise first, then
        ``val_unseen_psnr``, the mean over the unseen noises.
    """
    model.eval()
    specs = (VAL_SEEN, *VAL_UNSEEN)
    scores: dict[str, list[float]] = {val_column(spec): [] for spec in specs}
    for i, clean in enumerate(images):
        for spec in specs:
            noisy = apply_noise(clean, spec, seed=1000 + i)
            x = torch.from_numpy(noisy).permute(2, 0, 1)[None].to(device)
            gen = torch.Generator(device=device).manual_seed(i)
            with autocast_context(device, precision):
                out = model(x, attn_mask_ratio=cfg.attn_mask_ratio, generator=gen)
            den = out.float().clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()
            scores[val_column(spec)].append(psnr(np.round(den * 255) / 255, clean))
    model.train()
    means = {key: float(np.mean(values)) for key, values in scores.items()}
    means["val_unseen_psnr"] = float(np.mean([means[val_column(spec)] for spec in VAL_UNSEEN]))
    return means


def setup_distributed(device_name: str | None) -> tuple[int, int, torch.device]:
    """Join a torchrun process group when launched by torchrun; returns (rank, world, device)."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return 0, 1, pick_device(device_name)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    use_cuda = torch.cuda.is_available() and device_name in (None, "auto", "cuda")
    dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def fit(cfg: TrainConfig, paths: RunPaths, *, device_name: str | None = None,
        init: str | Path | None = None, resume: bool = False, overwrite: bool = False,
        progress: bool = True, stop: StopRequest | None = None) -> TrainState:
    """Train (or continue) a run up to ``cfg.iterations``; Ctrl-C or SIGTERM stop it early.

    A checkpoint is written every ``cfg.checkpoint_every`` iterations and at exit.
    Under torchrun every process trains its replica through DDP.

    Args:
        stop: Installed by the caller, to also cover its work after the run (else fit's own).

    Raises:
        FileExistsError: A new run in a folder that holds a run's checkpoint or weights, or
            ``resume`` where only the weights are left, unless ``overwrite``: the earlier
            run is not replaced without being asked.

    Returns:
        The final state of this process.
    """
    if paths.out_dir.exists() and not paths.out_dir.is_dir():
        raise NotADirectoryError(f"{paths.out_dir}: exists and is not a folder (--out is a run folder)")
    rank, world, device = setup_distributed(device_name)
    precision = resolve_precision(cfg.precision, device)
    # Everything a run needs is checked before its folder is made or anything is written.
    PatchDataset(paths.data_dir, cfg.patch, cfg.seed).check_usable()
    val_images = None
    if rank == 0 and cfg.val_every and paths.val_dir is not None:
        val_images = load_validation_images(paths.val_dir, cfg)
    resumed = _may_start(paths, resume, overwrite)
    state = new_state(cfg, device)
    if resumed:
        load_checkpoint(state, cfg, paths.checkpoint)
        LOG.info("resumed %s at iteration %d", paths.checkpoint, state.iteration)
        if state.iteration >= cfg.iterations:
            LOG.warning("the run is at iteration %d already: nothing to train up to --iterations %d",
                        state.iteration, cfg.iterations)
    elif init is not None:
        warm_start(state, init)
    paths.out_dir.mkdir(parents=True, exist_ok=True)
    net = DistributedDataParallel(state.model) if world > 1 else state.model
    log = None
    if rank == 0:
        log = CsvLog(paths.out_dir / "log.csv", restart=not resumed,
                     resumed_at=state.iteration if resumed else None)
    own = stop is None
    stop = stop or StopRequest()
    with stop.installed() if own else contextlib.nullcontext():
        stop.state = state
        try:
            _loop(state, net, cfg, paths, rank, world, device, precision, log, val_images,
                  progress, stop)
        except KeyboardInterrupt:
            state.interrupted = True
        finally:
            stop.holding = True
            if rank == 0 and not state.mid_step:
                save_checkpoint(state, cfg, paths.checkpoint, paths.sources())
    if state.interrupted and rank == 0:
        if state.mid_step:  # not by a signal: those let a weight update finish
            LOG.warning("stopped inside iteration %d's weight update: %s keeps the checkpoint "
                        "before it", state.iteration + 1, paths.checkpoint)
        else:
            LOG.warning("interrupted at iteration %d; checkpoint written", state.iteration)
    state.world = world
    state.precision = precision
    return state


def _may_start(paths: RunPaths, resume: bool, overwrite: bool) -> bool:
    """Whether the run resumes from its checkpoint; raises FileExistsError where a new run would
    replace an earlier one unasked."""
    resumed = resume and paths.checkpoint.exists()
    held = [name for name in RUN_FILES if (paths.out_dir / name).exists()]
    if not resumed and held and not overwrite:
        if resume:  # e.g. last.ckpt deleted to save space: its exported model must not go
            raise FileExistsError(
                f"{paths.out_dir} holds no {CKPT_NAME} to resume, but a run's {', '.join(held)}: "
                "start over with --overwrite, or choose another --out")
        raise FileExistsError(
            f"{paths.out_dir} already holds a run ({', '.join(held)}): continue it with "
            "--resume, start over with --overwrite, or choose another --out")
    if resume and not resumed:
        LOG.warning("%s holds no checkpoint to resume: starting a new run", paths.out_dir)
    return resumed


def train(cfg: TrainConfig, paths: RunPaths, *, device_name: str | None = None,
          init: str | Path | None = None, resume: bool = False, overwrite: bool = False,
          progress: bool = True) -> tuple[Path, TrainState]:
    """:func:`fit`, then export the EMA weights with a model card (on rank 0).

    Returns:
        (the exported ``model.safetensors`` in ``paths.out_dir``, the final state).
    """
    out = paths.out_dir / "model.safetensors"
    stop = StopRequest()
    with stop.installed():  # a signal during the export lets it end (the run holds by then)
        state = fit(cfg, paths, device_name=device_name, init=init, resume=resume,
                    overwrite=overwrite, progress=progress, stop=stop)
        if is_main_process():
            device = next(state.model.parameters()).device
            save_weights(state.ema, out, _card(state, cfg, device, state.precision, state.world, paths),
                         overwrite=True)
        if dist.is_initialized():  # inside: a late second signal must not kill a rank here
            dist.destroy_process_group()
    return out, state


def _loop(state: TrainState, net: torch.nn.Module, cfg: TrainConfig, paths: RunPaths, rank: int,
          world: int, device: torch.device, precision: str, log: CsvLog | None,
          val_images: list[np.ndarray] | None, progress: bool, stop: StopRequest) -> None:
    bar = tqdm(total=cfg.iterations, initial=state.iteration, disable=not progress or rank != 0,
               dynamic_ncols=True, desc=f"{cfg.preset}/{cfg.model_size}")
    data = batches(cfg, paths.data_dir, state.iteration, rank, world)
    last = time.monotonic()
    try:
        while state.iteration < cfg.iterations:
            clean = next(data).to(device, non_blocking=True)
            gen = step_generator(cfg, state.iteration, rank, device)
            loss = train_step(state, net, clean, cfg, gen, precision)
            state.iteration += 1
            state.mid_step = False  # set by train_step once it starts changing the weights
            now = time.monotonic()
            state.elapsed += now - last
            last = now
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", lr=f"{state.scheduler.get_last_lr()[0]:.1e}")
            if rank == 0:
                _periodic(state, cfg, paths, device, precision, log, val_images, loss)
            if state.iteration < cfg.iterations and stop.agreed(device):
                state.interrupted = True
                break
    finally:
        stop.holding = True  # the wind-down ends whatever signal comes
        data.close()  # stops the DataLoader workers now, also after an error
        bar.close()  # ends the progress line, so what follows starts on a line of its own


def _periodic(state: TrainState, cfg: TrainConfig, paths: RunPaths, device: torch.device,
              precision: str, log: CsvLog | None, val_images: list[np.ndarray] | None,
              loss: float) -> None:
    it = state.iteration
    row = {"iteration": it, "elapsed_s": f"{state.elapsed:.1f}", "loss": f"{loss:.5f}",
           "lr": state.scheduler.get_last_lr()[0]}
    if val_images and (it % cfg.val_every == 0 or it == cfg.iterations):  # and the final weights
        scores = validate(state.ema, cfg, val_images, device, precision)
        row.update({key: f"{value:.3f}" for key, value in scores.items()})
        shown = ", ".join(f"{key[4:-5]} {value:.2f}" for key, value in scores.items())
        tqdm.write(f"[{cfg.preset}] it {it}: val PSNR (dB) {shown}")
    if log is not None and (it % 50 == 0 or "val_unseen_psnr" in row or it == cfg.iterations):
        log.write(**row)
    if it % cfg.checkpoint_every == 0:
        save_checkpoint(state, cfg, paths.checkpoint, paths.sources())
        save_weights(state.ema, paths.out_dir / "model.safetensors",
                     _card(state, cfg, device, precision, 1, paths), overwrite=True)


def _card(state: TrainState, cfg: TrainConfig, device: torch.device, precision: str, world: int,
          paths: RunPaths) -> dict:
    card = {
        "name": cfg.preset, "train_config": cfg.to_dict(), "iterations": state.iteration,
        "batch": cfg.batch * world, "patches_seen": state.iteration * cfg.batch * world,
        "data": str(paths.data_dir.name), "hardware": machine_description(device),
        "precision": precision, "wall_time_s": round(state.elapsed, 1),
        "paper_budget": "450k iterations x batch 64 on DIV2K+Flickr2K+BSD500+WED",
    }
    departures = cfg.departures(fine_tuned=state.init is not None)
    if state.init:
        card["init"] = state.init
    if departures:
        card["departures"] = departures
    if state.history:  # fine-tuned from earlier weights: their stages, then the totals
        card["history"] = state.history
        card.update(budget_totals(lineage(card)))
    return card
