"""Training and export of latentcast models (``python -m training --help``)."""
