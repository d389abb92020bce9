"""Seeded scripts: simulations and generators with a known right answer."""
