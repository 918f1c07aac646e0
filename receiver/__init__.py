"""The receiving end: subscribe, validate, decode, measure and report."""
