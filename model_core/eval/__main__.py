"""``python -m model_core.eval``: the same as ``mdn eval``."""

import sys

from model_core.eval.cli import main

sys.exit(main())
