"""Code that both ends of a latentcast link need: models, entropy coding, wire format, metrics.

This package imports nothing from ``sender``, ``receiver``, ``training`` or ``benchmarks``.
"""

__version__ = "0.1.0"
