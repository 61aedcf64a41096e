"""mdn core: masked SwinIR, noise zoo, metrics, inference engine. Qt-free by design."""

__version__ = "0.1.0"
