"""Drive a paired run (``mdn train --paired``): both models, one process, one device.

``RUN/masked`` and ``RUN/baseline`` each get what a run of :mod:`model_core.train.run` writes
(``last.ckpt``, ``model.safetensors`` with its card, ``log.csv``), so ``--resume``,
``publish`` and ``configs/gpu_stage.py`` treat each as an ordinary run.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from model_core.device import pick_device, resolve_precision
from model_core.network.checkpoint import save_weights
from model_core.train.config import TrainConfig
from model_core.train.loop import (
    CKPT_NAME,
    CsvLog,
    TrainState,
    checkpoint_run,
    load_checkpoint,
    save_checkpoint,
    warm_start,
)
from model_core.train.paired import PAPER_BATCH, PRESETS, PairedTrainer, baseline_config, new_paired_state
from model_core.train.resident import BatchMaker, load_resident
from model_core.train.run import RunPaths, _card, _may_start, _periodic, load_validation_images
from model_core.train.signals import StopRequest

LOG = logging.getLogger(__name__)
LOG_EVERY = 50  # iterations between log.csv rows, as in the CPU path


@dataclass(frozen=True)
class PairedPaths:
    """Where a paired run reads and writes: ``out_dir/masked`` and ``out_dir/baseline``."""

    out_dir: Path
    data_dir: Path
    val_dir: Path | None

    def run(self, preset: str) -> RunPaths:
        """The ordinary run folder of one of the two models."""
        return RunPaths(self.out_dir / preset, self.data_dir, self.val_dir)


@dataclass(frozen=True)
class StepOptions:
    """How the paired step runs (not what it computes): see :class:`PairedTrainer`."""

    variant: str = "eager"
    sdpa: bool = False


def fit_paired(cfg: TrainConfig, paths: PairedPaths, *, device_name: str | None = None,
               init: str | None = None, baseline_init: str | None = None, resume: bool = False,
               overwrite: bool = False, progress: bool = True, options: StepOptions = StepOptions(),
               stop: StopRequest | None = None) -> PairedTrainer:
    """Train (or continue) both models up to ``cfg.iterations`` (``cfg`` is the masked model's).

    Checkpoints every ``cfg.checkpoint_every`` iterations and at exit, as :func:`~model_core.
    train.run.fit` does for one model; Ctrl-C or SIGTERM stop both after the iteration under way.

    Raises:
        ValueError: Under torchrun, or the two run folders are at different iterations.
        FileExistsError: As :func:`~model_core.train.run.fit`, for either folder.
    """
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        raise ValueError("--paired trains in one process on one device: start it without torchrun")
    device = pick_device(device_name)
    precision = resolve_precision(cfg.precision, device)
    cfgs = (cfg, baseline_config(cfg))
    images = load_resident(paths.data_dir, cfg.patch, device)  # checks the data before anything is written
    val_images = None
    if cfg.val_every and paths.val_dir is not None:
        val_images = load_validation_images(paths.val_dir, cfg)
    states, logs = _open(cfgs, paths, device, (init, baseline_init), resume, overwrite)
    trainer = PairedTrainer(states, cfgs, device, precision, options.variant, options.sdpa)
    LOG.info("paired step: %s%s, batch %d, %s on %s", trainer.variant, " with SDPA" * options.sdpa,
             cfg.batch, precision, device)
    own = stop is None
    stop = stop or StopRequest()
    with stop.installed() if own else contextlib.nullcontext():
        stop.state = states[0]
        try:
            _loop(trainer, BatchMaker(images, cfg), paths, logs, val_images, progress, stop)
        except KeyboardInterrupt:
            states[0].interrupted = True
        finally:
            stop.holding = True
            if not any(s.mid_step for s in states):
                for p, state, c in zip(PRESETS, states, cfgs, strict=True):
                    save_checkpoint(state, c, paths.run(p).checkpoint, paths.run(p).sources())
    if states[0].interrupted:
        LOG.warning("interrupted at iteration %d%s", states[0].iteration,
                    "" if not states[0].mid_step else " inside a weight update: the checkpoints "
                    "before it are kept")
    for state in states:
        state.interrupted = states[0].interrupted
        state.precision = precision
    return trainer


def _open(cfgs: tuple[TrainConfig, TrainConfig], paths: PairedPaths, device: torch.device,
          weights: tuple[str | None, str | None], resume: bool,
          overwrite: bool) -> tuple[tuple[TrainState, TrainState], list[CsvLog]]:
    """Both models' states (resumed, warm-started from ``weights`` or fresh) and logs."""
    resumed = {_may_start(paths.run(p), resume, overwrite) for p in PRESETS}
    if len(resumed) > 1:
        raise ValueError(f"{paths.out_dir}: only one of masked/{CKPT_NAME} and baseline/{CKPT_NAME} "
                         "exists: resume needs both (or start over with --overwrite)")
    again = resumed == {True}
    states = tuple(_start_state(c, paths.run(p), device, w, again)
                   for p, c, w in zip(PRESETS, cfgs, weights, strict=True))
    if states[0].iteration != states[1].iteration:
        raise ValueError(f"{paths.out_dir}: masked is at iteration {states[0].iteration}, baseline at "
                         f"{states[1].iteration}: not one paired run")
    logs = []
    for p in PRESETS:
        paths.run(p).out_dir.mkdir(parents=True, exist_ok=True)
        logs.append(CsvLog(paths.run(p).out_dir / "log.csv", restart=not again,
                           resumed_at=states[0].iteration if again else None))
    return states, logs


def _start_state(cfg: TrainConfig, paths: RunPaths, device: torch.device, weights: str | None,
                 resumed: bool) -> TrainState:
    state = new_paired_state(cfg, device)
    if resumed:
        load_checkpoint(state, cfg, paths.checkpoint)
        LOG.info("resumed %s at iteration %d", paths.checkpoint, state.iteration)
    elif weights is not None:
        warm_start(state, weights)
    return state


def _loop(trainer: PairedTrainer, maker: BatchMaker, paths: PairedPaths, logs: list[CsvLog],
          val_images: list[np.ndarray] | None, progress: bool, stop: StopRequest) -> None:
    cfg = trainer.cfgs[0]
    bar = tqdm(total=cfg.iterations, initial=trainer.iteration, disable=not progress,
               dynamic_ncols=True, desc=f"paired/{cfg.model_size}")
    last = time.monotonic()
    try:
        while trainer.iteration < cfg.iterations:
            losses = trainer.step(maker(trainer.iteration))
            it = trainer.iteration + 1
            # Waiting for the device at log points only, before the clock is read: the rows'
            # elapsed_s is then the device's time, not how far ahead the host has queued.
            values = losses.tolist() if _eventful(cfg, it) else None
            now = time.monotonic()
            trainer.count(now - last)
            last = now
            bar.update(1)
            if values is not None:
                bar.set_postfix(masked=f"{values[0]:.4f}", baseline=f"{values[1]:.4f}")
                for p, state, c, log, loss in zip(PRESETS, trainer.states, trainer.cfgs, logs, values,
                                                  strict=True):
                    _periodic(state, c, paths.run(p), trainer.device, trainer.precision, log,
                              val_images, loss)
            if it < cfg.iterations and stop.agreed(trainer.device):
                trainer.states[0].interrupted = True
                break
    finally:
        stop.holding = True
        bar.close()


def _eventful(cfg: TrainConfig, it: int) -> bool:
    """Whether iteration ``it`` logs, validates, checkpoints or ends the run (see ``_periodic``)."""
    return (it % LOG_EVERY == 0 or it == cfg.iterations or it % cfg.checkpoint_every == 0
            or bool(cfg.val_every and it % cfg.val_every == 0))


def train_paired(cfg: TrainConfig, paths: PairedPaths, **kwargs) -> PairedTrainer:
    """:func:`fit_paired`, then export both EMA models with their cards (``kwargs``: its own)."""
    stop = StopRequest()
    with stop.installed():
        trainer = fit_paired(cfg, paths, stop=stop, **kwargs)
        for p, state, c in zip(PRESETS, trainer.states, trainer.cfgs, strict=True):
            card = _card(state, c, trainer.device, trainer.precision, 1, paths.run(p))
            card["step"] = {"path": "paired (mdn train --paired)", "variant": trainer.variant,
                            "sdpa": trainer.sdpa, "fallbacks": trainer.fallbacks}
            save_weights(state.ema, paths.run(p).out_dir / "model.safetensors", card, overwrite=True)
    return trainer


def paired_config(args: argparse.Namespace) -> tuple[TrainConfig, argparse.Namespace, dict]:
    """The masked run's configuration from ``mdn train --paired`` options, the options as the
    masked run's (``--out RUN/masked``), and its saved folders when resuming.

    A new run's batch defaults to the paper's 64; a batch above it scales the learning rate by
    ``sqrt(batch / 64)`` unless ``--lr`` is given (a departure its card names).
    """
    from model_core.train.cli import config_from_args  # the CLI imports this module lazily

    if args.preset is not None:
        raise ValueError("--paired trains both presets: leave out --preset")
    masked = copy.copy(args)
    masked.preset, masked.out = "masked", args.out / "masked"
    checkpoint = masked.out / CKPT_NAME
    saved, sources = checkpoint_run(checkpoint) if args.resume and checkpoint.is_file() else (None, {})
    if saved is None and masked.batch is None:
        masked.batch = PAPER_BATCH
    cfg = config_from_args(masked, saved)
    if saved is None and args.lr is None and cfg.batch > PAPER_BATCH:
        cfg = dataclasses.replace(cfg, lr=cfg.lr * math.sqrt(cfg.batch / PAPER_BATCH))
    return cfg, masked, sources


def _weights_option(text: str | None) -> str | None:
    return None if text is None or text.lower() == "none" else text


def run_paired(args: argparse.Namespace) -> int:
    """Run ``mdn train --paired``; returns the exit code."""
    from model_core.train.cli import run_paths

    cfg, masked, sources = paired_config(args)
    init, baseline_init = _weights_option(args.init), _weights_option(args.baseline_init)
    if args.resume and (init or baseline_init):
        raise ValueError("--resume and --init (--baseline-init) exclude each other")
    if init and args.baseline_init is None:
        raise ValueError("--paired --init needs --baseline-init too (the baseline's weights, or none "
                         "to train it from scratch)")
    folders = run_paths(masked, sources)
    paths = PairedPaths(args.out, folders.data_dir, folders.val_dir)
    trainer = train_paired(cfg, paths, device_name=args.device, init=init, baseline_init=baseline_init,
                           resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress,
                           options=StepOptions(args.variant, args.sdpa))
    print(f"weights written to {args.out / 'masked'} and {args.out / 'baseline'} (step: {trainer.variant}"
          f"{', SDPA' if trainer.sdpa else ''})")
    if trainer.states[0].interrupted:
        print(f"stopped at iteration {trainer.iteration} of {cfg.iterations}; continue with --resume")
        return 130
    return 0
