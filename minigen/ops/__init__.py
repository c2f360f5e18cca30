"""Primitive differentiable ops, one file per family."""
