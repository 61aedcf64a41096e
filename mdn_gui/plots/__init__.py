"""pyqtgraph plots: metrics, sweeps and mask visualisations."""
