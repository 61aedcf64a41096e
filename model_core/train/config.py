"""Typed training configuration: the paper's recipe as presets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_core.configs import ConfigMixin
from model_core.network import SwinIRConfig

MODEL_SIZES = {"paper": SwinIRConfig.paper, "lite": SwinIRConfig.lite, "small": SwinIRConfig.small,
               "tiny": SwinIRConfig.tiny}
_SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
DEFAULT_TRAIN_DIR = _SHARED / "train" / "CBSD432"
DEFAULT_VAL_DIR = _SHARED / "val" / "Kodak24"


# Named recipes: the fields in which each departs from the paper's. Both keep the paper's masks
# (80-90 % input mask on the patches it masks, 75 % attention mask in training and at test).
RECIPES: dict[str, dict[str, Any]] = {
    "paper": {},
    # mdn's recipe for CPU budgets (docs/RESULTS.md): fine-tune a trained baseline (--init),
    # leave a quarter of the patches dense so the network keeps using complete images, a
    # higher learning rate with a short warm-up and a cosine fall over the last quarter, and a
    # short EMA; the schedule ends inside the run's --iterations.
    "cpu": {"dense_share": 0.25, "lr": 2e-4, "warmup": 100, "milestones": (), "cosine_tail": 0.25,
            "ema_decay": 0.995},
}

# What the cpu recipe changes from the paper's, in words, for model cards (``departures``).
_FINE_TUNED = "fine-tuned from trained weights (--init) instead of trained from scratch"
_CPU_DEPARTURES = (
    "learning rate 2e-4 with a 100-iteration warm-up and a cosine fall to 0 over the last quarter of "
    "the stage (the paper: 1e-4, halved at 150k-400k of 450k iterations)",
    "EMA decay 0.995 (the paper: 0.999)",
)


@dataclass(frozen=True)
class TrainConfig(ConfigMixin):
    """Everything that defines a training run; saved in every checkpoint and model card.

    The ``masked`` and ``baseline`` presets differ only in the two masks.

    Attributes:
        preset: ``"masked"`` or ``"baseline"``.
        model_size: ``"paper"``, ``"lite"``, ``"small"`` or ``"tiny"`` (tests).
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
        cosine_tail: Share of the iterations at the end over which the learning rate falls to
            zero along a half cosine (0 = none, as in the paper); milestones before it still apply.
        recipe: ``"paper"`` (the official recipe) or ``"cpu"`` (mdn's departure for CPU
            budgets, see :data:`RECIPES`); only a name carried into checkpoints and cards.
        dense_share: Share of the patches of a masked run that are left dense, with no input
            mask (0 = the paper: every patch is input-masked); the share at iteration 0 when
            ``dense_final`` is set.
        dense_final: Dense share at the last iteration: the share moves linearly from
            ``dense_share`` to it over the run's ``iterations`` (None = constant ``dense_share``).
        mask_ramp: Share of the run's iterations over which the input mask ramps up: each
            patch's drop ratio ``r``, drawn from ``input_mask``, becomes
            ``mask_ramp_start + (r - mask_ramp_start) * t``, with ``t`` rising linearly from 0
            at iteration 0 to 1 at the end of the ramp (0 = no ramp, the paper's ratios
            throughout). The attention mask is never ramped.
        mask_ramp_start: Input-mask drop ratio of every masked patch at iteration 0 of a ramp.
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
    cosine_tail: float = 0.0
    recipe: str = "paper"
    dense_share: float = 0.0
    dense_final: float | None = None
    mask_ramp: float = 0.0
    mask_ramp_start: float = 0.5
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
        if self.recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, not {self.recipe!r}")
        if not 0 <= self.cosine_tail <= 1:
            raise ValueError(f"cosine_tail must be in [0, 1], not {self.cosine_tail}")
        if not 0 <= self.dense_share <= 1:
            raise ValueError(f"dense_share must be in [0, 1], not {self.dense_share}")
        if self.dense_share and self.input_mask is None:
            raise ValueError("dense_share needs an input mask (the baseline has none)")
        self._check_schedules()
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

    def _check_schedules(self) -> None:
        """Checks of the dense-share and input-mask schedules."""
        if self.dense_final is not None and not 0 <= self.dense_final <= 1:
            raise ValueError(f"dense_final must be in [0, 1], not {self.dense_final}")
        if not 0 <= self.mask_ramp <= 1:
            raise ValueError(f"mask_ramp must be in [0, 1], not {self.mask_ramp}")
        if not 0 <= self.mask_ramp_start < 1:
            raise ValueError(f"mask_ramp_start must be in [0, 1), not {self.mask_ramp_start}")
        if self.input_mask is None and (self.dense_final is not None or self.mask_ramp):
            raise ValueError("dense_final and mask_ramp need an input mask (the baseline has none)")

    def dense_share_at(self, iteration: int) -> float:
        """Share of the patches left dense at ``iteration`` (0-based): ``dense_share``, or
        under ``dense_final`` the straight line from it at 0 to ``dense_final`` at the last
        iteration (``iterations - 1``)."""
        if self.dense_final is None:
            return self.dense_share
        t = min(1.0, max(0, iteration) / max(1, self.iterations - 1))
        return self.dense_share + (self.dense_final - self.dense_share) * t

    def mask_ramp_at(self, iteration: int) -> float:
        """How far the input-mask ramp is at ``iteration``: 0 at its start, 1 from its end on
        (and always 1 without a ramp)."""
        length = self.mask_ramp * self.iterations
        if length <= 0 or iteration >= length:
            return 1.0
        return max(0, iteration) / length

    @classmethod
    def preset_config(cls, preset: str, recipe: str = "paper", **changes: Any) -> TrainConfig:
        """``preset`` under ``recipe`` (the paper's by default); ``changes`` override single
        fields."""
        masks: dict[str, Any] = {"input_mask": (0.8, 0.9), "attn_mask_ratio": 0.75}
        if preset == "baseline":
            masks = {"input_mask": None, "attn_mask_ratio": 0.0}
        departures = dict(RECIPES.get(recipe, {}))  # an unknown recipe is refused by __post_init__
        if preset == "baseline":  # no input mask, so no patch to leave dense
            departures.pop("dense_share", None)
        return cls(preset=preset, recipe=recipe, **{**masks, **departures, **changes})

    def departures(self, *, fine_tuned: bool) -> list[str]:
        """What this run's recipe changes from the paper's, in words (empty for the paper's).

        Args:
            fine_tuned: Whether the run started from trained weights (``--init``); a cpu-recipe
                run trained from scratch does not depart from the paper in that.
        """
        big = []
        if self.batch > 64:  # the paired GPU path's larger batches (mdn train --paired --batch)
            big = [f"batch {self.batch}, above the paper's 64, for GPU speed, with learning rate "
                   f"{self.lr:g}: a departure kept only if its validation per patch is no worse"]
        if self.recipe == "paper":
            return big
        lines = [*([_FINE_TUNED] if fine_tuned else []), *_CPU_DEPARTURES, *big,
                 f"batch {self.batch} of {self.patch}x{self.patch} crops (the paper: "
                 "batch 64 of 64x64 crops of DIV2K+Flickr2K+BSD500+WED)"]
        lines[:0] = self._schedule_departures()
        if self.model_size == "small":
            small, paper = SwinIRConfig.small(), SwinIRConfig.paper()
            lines.insert(0, f"small model: embed {small.embed_dim}, {len(small.depths)} groups of "
                            f"{small.depths[0]} blocks (the paper: embed {paper.embed_dim}, "
                            f"{len(paper.depths)} groups of {paper.depths[0]})")
        return lines

    def _schedule_departures(self) -> list[str]:
        """The dense share and the input-mask ramp in words (nothing where they are the paper's)."""
        lines: list[str] = []
        final = self.dense_share if self.dense_final is None else self.dense_final
        if final != self.dense_share:
            way = "falls" if final < self.dense_share else "rises"
            lines.append(f"the dense share (patches left without input mask; the others get the "
                         f"paper's input mask) {way} from {self.dense_share:.0%} to {final:.0%} "
                         "over the stage")
        elif self.dense_share:
            lines.append(f"{self.dense_share:.0%} of the patches are left dense (no input mask); "
                         "the others get the paper's input mask")
        if self.mask_ramp and self.input_mask is not None:
            low, high = (round(v * 100) for v in self.input_mask)
            lines.append(f"input-mask curriculum: {self.mask_ramp_start:.0%} moving to the paper's "
                         f"{low}-{high}% over the first {self.mask_ramp:.0%} of the stage")
        return lines

    def model_config(self) -> SwinIRConfig:
        """Architecture for ``model_size``."""
        return MODEL_SIZES[self.model_size]()

