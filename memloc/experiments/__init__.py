"""Analyses that several result notebooks share (notebooks stay thin: they call these)."""
