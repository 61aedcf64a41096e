"""Evaluation: the paper's protocol over data sets x noises x methods (``mdn eval``).

``methods`` holds the denoisers (:func:`make_method`), ``protocol`` the seeded grid
(:func:`evaluate` -> :class:`Row` list), ``report`` the JSON/Markdown/figure outputs and ``cli``
the command. Importing this package does not import torch or Matplotlib.
"""

from model_core.eval.methods import (
    BM3DMethod,
    Method,
    NetworkMethod,
    NLMMethod,
    NoisyMethod,
    known_sigma,
    make_method,
    method_label,
)
from model_core.eval.protocol import (
    EvalCancelled,
    EvalProgress,
    Row,
    SkippedImageWarning,
    evaluate,
    list_images,
    noise_seed,
)
from model_core.eval.report import (
    markdown_tables,
    plot_png,
    rows_to_json,
    write_json,
    write_markdown,
    write_plot,
)

__all__ = [
    "BM3DMethod",
    "EvalCancelled",
    "EvalProgress",
    "Method",
    "NLMMethod",
    "NetworkMethod",
    "NoisyMethod",
    "Row",
    "SkippedImageWarning",
    "evaluate",
    "known_sigma",
    "list_images",
    "make_method",
    "markdown_tables",
    "method_label",
    "noise_seed",
    "plot_png",
    "rows_to_json",
    "write_json",
    "write_markdown",
    "write_plot",
]
