"""The masked SwinIR network: configuration, model, masks and checkpoints."""

from model_core.network.config import SwinIRConfig
from model_core.network.masks import INPUT_MASK_FILL, apply_input_mask, draw_keep_maps
from model_core.network.swinir import AttentionProbe, MaskedSwinIR, ProbeRequest, ProbeResult


def build_model(cfg: SwinIRConfig) -> MaskedSwinIR:
    """Build a freshly initialised network for ``cfg``."""
    return MaskedSwinIR(cfg)


__all__ = [
    "INPUT_MASK_FILL",
    "AttentionProbe",
    "MaskedSwinIR",
    "ProbeRequest",
    "ProbeResult",
    "SwinIRConfig",
    "apply_input_mask",
    "build_model",
    "draw_keep_maps",
]
