"""Typed training configuration: the paper's recipe as presets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_core.configs import ConfigMixin
from model_core.network import SwinIRConfig

MODEL_SIZES = {"paper": SwinIRConfig.paper, "lite": SwinIRConfig.lite, "tiny": SwinIRConfig.tiny}
_SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
DEFAULT_TRAIN_DIR = _SHARED / "train" / "CBSD432"
DEFAULT_VAL_DIR = _SHARED / "val" / "Kodak24"


@dataclass(frozen=True)
class TrainConfig(ConfigMixin):
    """Everything that defines a training run; saved in every checkpoint and model card.

    The ``masked`` and ``baseline`` presets differ only in the two masks.

    Attributes:
        preset: ``"masked"`` or ``"baseline"``.
        model_size: ``"paper"``, ``"lite"`` or ``"tiny"`` (tests).
        patch: Side of the random training crops.
        batch: Patches per iteration (per process under DDP).
        sigma: Gaussian noise level of training, on 0-255.
        input_mask: (low, high) drop ratio of the input mask, drawn per patch from
            the integers low*100..high*100; None for no input mask.
        attn_mask_ratio: Attention-mask drop ratio at training (0 = off).
        lr: Adam learning rate.
        milestones: Iterations at which the learning rate is multiplied by ``gamma``.
        gamma: Learning-rate decay factor.
        warmup: Iterations of linear learning-rate warm-up (0 = none, as in the paper; use
            some when fine-tuning from ``--init``).
        ema_decay: Decay of the exponential moving average of the weights.
        iterations: Total iterations.
        checkpoint_every: Iterations between checkpoints.
        val_every: Iterations between validations (0 = never).
        val_limit: Validation images used (first N by name).
        val_crop: Centre crop side of validation images (0 = full image).
        seed: Seed of data sampling, noise and masks.
        precision: ``"fp32"`` or ``"bf16"`` (autocast), or ``"auto"``.
        workers: DataLoader worker processes.
    """

    preset: str = "masked"
    model_size: str = "paper"
    patch: int = 64
    batch: int = 8
    sigma: float = 15.0
    input_mask: tuple[float, float] | None = (0.8, 0.9)
    attn_mask_ratio: float = 0.75
    lr: float = 1e-4
    milestones: tuple[int, ...] = (150_000, 200_000, 300_000, 350_000, 400_000)
    gamma: float = 0.5
    warmup: int = 0
    ema_decay: float = 0.999
    iterations: int = 450_000
    checkpoint_every: int = 500
    val_every: int = 2000
    val_limit: int = 8
    val_crop: int = 256
    seed: int = 0
    precision: str = "auto"
    workers: int = 1

    def __post_init__(self) -> None:
        if self.preset not in ("masked", "baseline"):
            raise ValueError(f"preset must be 'masked' or 'baseline', not {self.preset!r}")
        if self.model_size not in MODEL_SIZES:
            raise ValueError(f"model_size must be one of {', '.join(MODEL_SIZES)}")
        if self.precision not in ("fp32", "bf16", "auto"):
            raise ValueError("precision must be fp32, bf16 or auto")
        if self.input_mask is not None:
            object.__setattr__(self, "input_mask", tuple(float(v) for v in self.input_mask))
            low, high = self.input_mask
            if not 0 <= low <= high < 1:
                raise ValueError("input_mask must be (low, high) with 0 <= low <= high < 1")
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))
        if self.warmup < 0:
            raise ValueError("warmup must be >= 0")
        if self.batch < 1 or self.patch < 8 or self.iterations < 1:
            raise ValueError("batch, patch and iterations must be positive (patch >= 8)")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), not {self.ema_decay}")
        if not self.lr > 0 or not 0 < self.gamma <= 1:
            raise ValueError("lr must be positive and gamma in (0, 1]")
        if not 0 <= self.attn_mask_ratio < 1:
            raise ValueError("attn_mask_ratio must be in [0, 1)")
        if self.checkpoint_every < 1 or self.val_limit < 1:
            raise ValueError("checkpoint_every and val_limit must be >= 1")
        if self.val_every < 0 or self.val_crop < 0 or self.seed < 0 or self.workers < 0:
            raise ValueError("val_every, val_crop, seed and workers must be >= 0")
        if self.sigma <= 0:
            raise ValueError("sigma must be positive")

    @classmethod
    def preset_config(cls, preset: str, **changes: Any) -> TrainConfig:
        """The paper's recipe for ``preset``; ``changes`` override single fields."""
        masks: dict[str, Any] = {"input_mask": (0.8, 0.9), "attn_mask_ratio": 0.75}
        if preset == "baseline":
            masks = {"input_mask": None, "attn_mask_ratio": 0.0}
        return cls(preset=preset, **{**masks, **changes})

    def model_config(self) -> SwinIRConfig:
        """Architecture for ``model_size``."""
        return MODEL_SIZES[self.model_size]()

