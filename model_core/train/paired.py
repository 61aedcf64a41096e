"""The masked and the baseline model trained together, in one process, on one device.

Both models take the same patches, noise, seed and schedule at every iteration (the baseline
gets the noisy patch, the masked model the same patch with its input mask and keep-maps), so
their budgets are equal by construction; on a GPU one process replaces two that time-slice it.
The step reads nothing back from the device: losses stay device tensors until a log point.
It runs eagerly, or through ``torch.compile``, or compiled with CUDA graphs; a variant that
cannot run here falls back to the next simpler one, and :attr:`PairedTrainer.variant` says
which ran.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from model_core.device import autocast_context
from model_core.network.attention import use_sdpa
from model_core.train.config import TrainConfig
from model_core.train.loop import LrSchedule, TrainState, ema_decay_at, new_state
from model_core.train.resident import ResidentBatch

LOG = logging.getLogger(__name__)
PRESETS = ("masked", "baseline")
VARIANTS = ("eager", "compile", "compile+cudagraphs")
# What a variant falls back to when it cannot run on this machine.
FALLBACK = {"compile+cudagraphs": "compile", "compile": "eager"}
PAPER_BATCH = 64


class VariantUnavailable(RuntimeError):
    """A step variant that this machine cannot run (no CUDA for CUDA graphs, no compiler)."""


def baseline_config(cfg: TrainConfig) -> TrainConfig:
    """The baseline twin of a masked run's configuration: the same recipe, schedule, batch and
    seed, without the two masks (and so without their schedules)."""
    return dataclasses.replace(cfg, preset="baseline", input_mask=None, attn_mask_ratio=0.0,
                               dense_share=0.0, dense_final=None, mask_ramp=0.0)


def new_paired_state(cfg: TrainConfig, device: torch.device) -> TrainState:
    """:func:`~model_core.train.loop.new_state` with the optimiser of the paired path: fused Adam
    on CUDA (one kernel for all parameters), the multi-tensor (foreach) one elsewhere."""
    state = new_state(cfg, device)
    kind = {"fused": True} if device.type == "cuda" else {"foreach": True}
    state.optimizer = torch.optim.Adam(state.model.parameters(), lr=cfg.lr, **kind)
    state.scheduler = torch.optim.lr_scheduler.LambdaLR(state.optimizer, LrSchedule.of(cfg))
    return state


def build_forward(model: torch.nn.Module, variant: str, device: torch.device) -> Callable[..., Tensor]:
    """``model``'s forward in ``variant`` (see :data:`VARIANTS`).

    Raises:
        VariantUnavailable: CUDA graphs off CUDA, or ``torch.compile`` missing or refusing.
    """
    if variant == "eager":
        return model
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    if variant == "compile+cudagraphs" and device.type != "cuda":
        raise VariantUnavailable("CUDA graphs need a CUDA device")
    compile_fn = getattr(torch, "compile", None)
    if compile_fn is None:
        raise VariantUnavailable("this torch has no torch.compile")
    try:
        return compile_fn(model, mode="reduce-overhead" if "cudagraphs" in variant else None)
    except Exception as exc:  # e.g. a Python version dynamo does not support
        raise VariantUnavailable(f"torch.compile refused: {exc}") from exc


@dataclass
class PairedTrainer:
    """One optimisation step of both models at a time (:meth:`step`).

    Args:
        states: The masked model's state, then the baseline's.
        cfgs: Their configurations (:func:`baseline_config` of the first for the second).
        device: Where both train.
        precision: ``"bf16"`` (autocast) or ``"fp32"``.
        variant: The step variant asked for; :attr:`variant` becomes the one that runs.
        sdpa: Train attention through ``F.scaled_dot_product_attention`` (:func:`use_sdpa`).
    """

    states: tuple[TrainState, TrainState]
    cfgs: tuple[TrainConfig, TrainConfig]
    device: torch.device
    precision: str
    variant: str = "eager"
    sdpa: bool = False
    fallbacks: list[str] = field(default_factory=list, init=False)  # "variant: why", in order
    _forwards: list[Callable[..., Tensor]] = field(default_factory=list, init=False, repr=False)
    _proven: bool = field(default=False, init=False)  # a step of the current variant has run

    def __post_init__(self) -> None:
        for state in self.states:
            use_sdpa(state.model, self.sdpa)
        self._set_variant(self.variant)
        with torch.no_grad():
            self._ema = [p for s in self.states for p in s.ema.parameters()]
            self._params = [p.detach() for s in self.states for p in s.model.parameters()]

    @property
    def iteration(self) -> int:
        return self.states[0].iteration

    def _set_variant(self, variant: str) -> None:
        while True:
            try:
                self._forwards = [build_forward(s.model, variant, self.device) for s in self.states]
                break
            except VariantUnavailable as exc:
                self._fall(variant, exc)
                variant = FALLBACK[variant]
        self.variant, self._proven = variant, False

    def _fall(self, variant: str, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        self.fallbacks.append(f"{variant}: {reason}")
        LOG.warning("step variant %s cannot run here (%s): falling back to %s", variant, reason,
                    FALLBACK[variant])

    def step(self, batch: ResidentBatch) -> Tensor:
        """Train both models one step on ``batch`` (drawn for :attr:`iteration`).

        Returns:
            The two L1 losses (masked, baseline) as a device tensor: reading it waits for the
            device, so the loop reads it at log points only.
        """
        try:
            losses = self._forward_backward(batch)
        except Exception as exc:  # compiling fails at the first call, before any weight changed
            if self._proven or self.variant == "eager":
                raise
            self._fall(self.variant, exc)
            self._set_variant(FALLBACK[self.variant])
            return self.step(batch)
        self._proven = True
        self._update()
        return losses

    def _forward_backward(self, batch: ResidentBatch) -> Tensor:
        if "cudagraphs" in self.variant:
            # A new iteration: outputs of the last replays may be overwritten from here on.
            torch.compiler.cudagraph_mark_step_begin()
        losses = []
        inputs = ((batch.masked, batch.keep_maps), (batch.noisy, None))
        for state, forward, (x, keeps) in zip(self.states, self._forwards, inputs, strict=True):
            with autocast_context(self.device, self.precision):
                out = forward(x) if keeps is None else forward(x, keep_maps=keeps)
            loss = F.l1_loss(out.float(), batch.clean)
            state.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            losses.append(loss.detach())
        return torch.stack(losses)

    def _update(self) -> None:
        """Adam, the schedule and one EMA update of both models (one foreach call for the two)."""
        for state in self.states:
            state.mid_step = True  # a checkpoint from here until the count would mix iterations
        for state in self.states:
            state.optimizer.step()
            state.scheduler.step()
        decay = ema_decay_at(self.cfgs[0].ema_decay, self.iteration)
        with torch.no_grad():
            torch._foreach_lerp_(self._ema, self._params, 1 - decay)

    def count(self, seconds: float) -> None:
        """The iteration is done: count it, with its ``seconds``, in both states."""
        for state in self.states:
            state.iteration += 1
            state.elapsed += seconds
            state.mid_step = False
