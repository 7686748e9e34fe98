"""Visualisation: overlays and plots."""
