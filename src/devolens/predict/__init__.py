"""Prediction: segmentation, populations, identities, tiled inference, post-processing."""
