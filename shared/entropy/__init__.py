"""Entropy models of quantized latents: the learned density used in training, the integer
tables frozen from it, and the constriction-based coder that uses those tables."""
