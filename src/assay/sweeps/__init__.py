"""Sweeps: many runs of one pipeline over a search space, driven by Optuna."""
