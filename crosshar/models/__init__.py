"""Models: the LIMU-BERT-style encoder, input scaling, span masking and the CrossHAR pretrainer.

Heads live in crosshar.models.heads (one file per head); this package re-exports the rest flat:
`from crosshar.models import Encoder, InputScaler, CrossHARPretrainer`.
"""

from crosshar.models.attention import FeedForward, MultiHeadAttention, TransformerBlock
from crosshar.models.encoder import Encoder
from crosshar.models.masking import apply_mask, sample_span_lengths, span_length_probs, span_mask
from crosshar.models.pretrainer import CrossHARPretrainer, PretrainingModel, SequenceAggregator
from crosshar.models.scaling import InputScaler

__all__ = [
    "Encoder", "TransformerBlock", "MultiHeadAttention", "FeedForward",
    "InputScaler",
    "span_mask", "apply_mask", "span_length_probs", "sample_span_lengths",
    "CrossHARPretrainer", "PretrainingModel", "SequenceAggregator",
]
