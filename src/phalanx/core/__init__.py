"""Leaf layer: types shared by every other layer. Imports nothing from phalanx."""
