"""Where shipped weights live, and turning a model name or a path into a weights file.

Shipped models are ``<weights dir>/<name>.safetensors`` for the names in :data:`SHIPPED_NAMES`;
the folder is ``$MDN_WEIGHTS_DIR`` when set, else ``resources/weights`` in the repository.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

__all__ = ["SHIPPED_NAMES", "WEIGHTS_ENV", "resolve_weights", "shipped_models", "weights_dir"]

LOG = logging.getLogger(__name__)
WEIGHTS_ENV = "MDN_WEIGHTS_DIR"
# The paper's masked-training model and the plain-training baseline it is compared with.
SHIPPED_NAMES = ("masked", "baseline")


def weights_dir() -> Path:
    """The folder of shipped weights: ``$MDN_WEIGHTS_DIR`` if set, else ``<repo>/resources/weights``."""
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[1] / "resources" / "weights"


def resolve_weights(name_or_path: str | os.PathLike[str]) -> Path:
    """Turn a shipped model name or a file path into an existing weights file.

    Args:
        name_or_path: ``"masked"`` or ``"baseline"`` for a shipped model, else a file path.

    Returns:
        The path of the weights file.

    Raises:
        FileNotFoundError: If the shipped model or the file does not exist (the message names
            the missing file).
        IsADirectoryError: If the path is a folder.
        TypeError: If the argument is neither a string nor a path.
    """
    if not isinstance(name_or_path, str | os.PathLike):
        raise TypeError(f"weights must be a name or a path, got {type(name_or_path).__name__}")
    if isinstance(name_or_path, str) and name_or_path in SHIPPED_NAMES:
        path = weights_dir() / f"{name_or_path}.safetensors"
        if not path.is_file():
            raise FileNotFoundError(f"the {name_or_path!r} model is not shipped yet: {path} is missing "
                                    f"(set {WEIGHTS_ENV} or pass a weights file)")
        return path
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a weights file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    return path


def shipped_models() -> dict[str, Path]:
    """The shipped models present on disk, by name."""
    folder = weights_dir()
    found = {name: folder / f"{name}.safetensors" for name in SHIPPED_NAMES}
    return {name: path for name, path in found.items() if path.is_file()}


# The paper trains and tests its masked model with this attention-mask ratio.
PAPER_ATTN_MASK_RATIO = 0.75


def training_attn_mask_ratio(card: dict) -> float:
    """The attention-mask ratio a model was trained with, read from its model card.

    Masked training keeps the mask at inference, so this is the right default at test
    time; a baseline trained without masks gets 0. Official checkpoints have no card
    and are the paper's masked models, so they get the paper's 0.75, as does a card whose
    ratio is not a number in [0, 1) (logged).
    """
    train_config = card.get("train_config") if isinstance(card, dict) else None
    if isinstance(train_config, dict) and "attn_mask_ratio" in train_config:
        ratio = train_config["attn_mask_ratio"]
        if isinstance(ratio, int | float) and not isinstance(ratio, bool) and 0 <= ratio < 1:
            return float(ratio)
        LOG.warning("model card: attn_mask_ratio %r is not a ratio in [0, 1); using the paper's %s",
                    ratio, PAPER_ATTN_MASK_RATIO)
    return PAPER_ATTN_MASK_RATIO


# The paper's training: 450k iterations of batch 64.
PAPER_TRAINING_PATCHES = 450_000 * 64


def training_summary(card: dict) -> str | None:
    """One line on how far a model was trained, read from its card; None if the card does not say.

    Earlier stages (``--init`` fine-tuning) count: ``total_*`` fields win over the last stage's.
    A last stage trained with a recipe other than the paper's (``mdn train --recipe cpu``) says so.
    """
    iterations = card.get("total_iterations", card.get("iterations"))
    patches = card.get("total_patches_seen", card.get("patches_seen"))
    if not isinstance(iterations, int | float) or isinstance(iterations, bool) or iterations <= 0:
        return None
    recipe = card.get("train_config")
    size = recipe.get("model_size") if isinstance(recipe, dict) else None
    text = f"{size} size, " if isinstance(size, str) else ""
    text += f"trained {int(iterations):,} iterations"
    if isinstance(patches, int | float) and not isinstance(patches, bool) and patches > 0:
        share = 100 * patches / PAPER_TRAINING_PATCHES
        text += f" ({share:.2g} % of the paper's training)"
    if isinstance(recipe, dict) and recipe.get("recipe", "paper") != "paper":
        text += f"; last stage with mdn's {recipe['recipe']} recipe, not the paper's"
    return text
