"""``python -m mdn_gui`` starts the workbench (same as ``mdn-gui``)."""

import sys

from mdn_gui.app import main

sys.exit(main())
