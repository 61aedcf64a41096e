"""mdn-gui: the Qt before/after workbench built on :mod:`model_core`."""
