"""``python -m model_core.train``: the same as ``mdn train`` (also the torchrun target)."""

import sys

from model_core.cli import main

sys.exit(main(["train", *sys.argv[1:]]))
