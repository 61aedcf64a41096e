"""Training of the masked and baseline denoisers (the paper's recipe as typed presets)."""

from model_core.train.config import TrainConfig

__all__ = ["TrainConfig"]
