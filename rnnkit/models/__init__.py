"""The four classic architectures (and the encoder-decoder), composed from ``rnnkit.nn``.

Each model has ``forward``, ``backward`` (adding into every parameter's gradient) and
``loss(outputs, targets, lengths) -> (loss, doutputs)``. ``Ensemble`` trains several models of
one kind side by side and predicts with the mean of their class probabilities.
"""

from rnnkit.models.decoding import beam_search, generate
from rnnkit.models.ensemble import Ensemble
from rnnkit.models.generative import OneToMany, Seq2Seq
from rnnkit.models.sequence import ManyToMany, ManyToOne, OneToOne

__all__ = ["Ensemble", "ManyToMany", "ManyToOne", "OneToMany", "OneToOne", "Seq2Seq", "beam_search", "generate"]
