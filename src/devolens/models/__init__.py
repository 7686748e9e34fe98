"""Models: architectures (a factory) and the zoo of shipped weights with their cards."""
