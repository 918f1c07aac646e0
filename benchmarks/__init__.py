"""Benchmarks: ``python -m benchmarks rd ...`` (more subcommands as they are added)."""
