"""Which denoisers the workbench can offer, and what they were trained with. No Qt."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mdn_gui import classical
from mdn_gui.jobs import ModelRef
from model_core.network import checkpoint
from model_core.weights import PAPER_ATTN_MASK_RATIO, shipped_models, training_attn_mask_ratio

PAPER_ATTN_RATIO = PAPER_ATTN_MASK_RATIO
LABELS = {
    "masked": "masked model",
    "baseline": "baseline model",
    "custom": "weights file",
    "nlm": "non-local means",
    "bm3d": "BM3D",
}
# Attention-mask ratio each shipped model was trained with, when its card does not say.
TRAINING_RATIO = {"masked": PAPER_ATTN_RATIO, "baseline": 0.0, "custom": PAPER_ATTN_RATIO}


def shipped_weights() -> dict[str, Path | None]:
    """Paths of the shipped ``masked`` and ``baseline`` weights (None where missing)."""
    found = shipped_models()
    return {name: found.get(name) for name in ("masked", "baseline")}


def read_card(path: Path | None) -> dict[str, Any]:
    """The JSON model card beside a weights file, or an empty dict (a bad card is logged)."""
    return {} if path is None else checkpoint.read_card(path)


def training_ratio(choice: str, path: Path | None) -> float:
    """Attention-mask ratio a network was trained with: its card's, else the choice's default.

    Without a card the shipped baseline is taken as unmasked and anything else as the paper's
    masked model.
    """
    card = read_card(path)
    if isinstance(card.get("train_config"), dict) and "attn_mask_ratio" in card["train_config"]:
        return min(max(training_attn_mask_ratio(card), 0.0), 0.95)
    return TRAINING_RATIO.get(choice, PAPER_ATTN_RATIO)


@dataclass
class ModelCatalog:
    """The available denoisers.

    Attributes:
        masked: Shipped masked-training weights, or None.
        baseline: Shipped baseline weights, or None.
        custom: A weights file the user opened, or None.
    """

    masked: Path | None = None
    baseline: Path | None = None
    custom: Path | None = None

    @classmethod
    def discover(cls) -> ModelCatalog:
        """The shipped weights found on this installation."""
        found = shipped_weights()
        return cls(masked=found["masked"], baseline=found["baseline"])

    def path(self, choice: str) -> Path | None:
        """Weights file of a network choice (None for classical methods or when missing)."""
        return {"masked": self.masked, "baseline": self.baseline, "custom": self.custom}.get(choice)

    def available(self, choice: str) -> bool:
        """Whether ``choice`` can run now."""
        if choice == "nlm":
            return True
        if choice == "bm3d":
            return classical.bm3d_available()
        return self.path(choice) is not None

    def why_unavailable(self, choice: str) -> str:
        """A sentence for a tooltip or a status message."""
        if self.available(choice):
            return ""
        if choice == "bm3d":
            return "BM3D needs the optional 'bm3d' package."
        if choice == "custom":
            return "Open a weights file (.safetensors or an official .pth) first."
        return (
            f"The shipped {choice} weights (resources/weights/{choice}.safetensors) were not "
            "found. Open a weights file instead."
        )

    def ref(self, choice: str) -> ModelRef:
        """The model reference of a choice.

        Raises:
            ValueError: When the choice is unknown or not available.
        """
        if choice not in LABELS:
            raise ValueError(f"unknown model {choice!r}; choose one of {', '.join(LABELS)}")
        if not self.available(choice):
            raise ValueError(self.why_unavailable(choice))
        label = LABELS[choice]
        if choice == "custom" and self.custom is not None:
            label = self.custom.stem
        return ModelRef(choice, self.path(choice), label)

    def networks(self) -> list[str]:
        """Network choices that can run now."""
        return [c for c in ("masked", "baseline", "custom") if self.available(c)]
