"""Neural transforms of the model zoo."""
