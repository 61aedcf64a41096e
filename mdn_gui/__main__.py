"""``python -m mdn_gui`` starts the workbench (same as ``mdn-gui``)."""

from mdn_gui.app import launch

launch()
