"""Models: architectures (a factory) and the zoo of shipped weights with their cards.

``devolens.models.load("nuclei")`` returns a ready predictor; ``devolens.models.available()``
lists the shipped models and ``devolens.models.card(name)`` gives a model's card.
"""

from devolens.models.zoo import available, card, load

__all__ = ["available", "card", "load"]
