"""Experiments and runs: one data version + one pipeline version + one params version."""
