"""Adapters at the edge: each one turns the same immutable snapshot into an output."""
