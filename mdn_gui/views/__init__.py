"""Thin Qt views that render the document and forward user input to the controllers."""
