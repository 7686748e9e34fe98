"""Training engine: trainer, losses, schedulers, metrics, pruning, tuning."""
