"""Torch datasets, augmentation pipelines and tiling."""
