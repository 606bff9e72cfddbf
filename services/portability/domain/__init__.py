"""Portability rules: pure, no I/O."""
