"""The LDAM paper's IMDB model: a 2-layer bidirectional LSTM text classifier (Cao et al. 2019, §4.1).

The paper gives no sizes; the defaults follow the common "upgraded sentiment analysis" recipe for
IMDB (embedding 100, hidden 256 per direction, 2 layers, dropout 0.5, vocabulary ≈25k, Adam).

Input: token ids [B, L] (LongTensor), right-padded with ``padding_idx`` — what
``longtail.data.imdb.encode`` returns. Lengths are taken from the padding (number of non-pad
ids per row, at least 1) unless passed explicitly. The embedded sequence is *packed*
(``pack_padded_sequence``), so padding never enters the recurrence: the forward direction's final
state is the state after the last real token and the backward direction's final state is the state
after reading back to the first token. Features = [h_fwd; h_bwd] of the top layer (2·hidden_dim),
after dropout, then the head.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from longtail.errors import ConfigError
from longtail.models.base import Classifier, seeded_generator
from longtail.models.heads import HeadName, make_head
from longtail.registry import Fraction, PositiveInt, register_model


class BiLSTMBackbone(nn.Module):
    """Embedding → packed 2-layer bidirectional LSTM → concat(final forward, final backward state)."""

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 100,
        hidden_dim: int = 256,
        num_layers: int = 2,
        dropout: float = 0.5,
        padding_idx: int = 0,
    ) -> None:
        super().__init__()
        self.padding_idx = padding_idx
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx)
        self.lstm = nn.LSTM(
            embed_dim,
            hidden_dim,
            num_layers=num_layers,
            bidirectional=True,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.feature_dim = 2 * hidden_dim

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is None:
            lengths = (ids != self.padding_idx).sum(dim=1)
        # An all-padding row (empty text) reads one pad embedding (the zero vector).
        lengths = lengths.clamp(min=1).to("cpu", torch.int64)
        embedded = self.dropout(self.embedding(ids))
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        _, (hidden, _) = self.lstm(packed)
        # hidden: [num_layers · 2, B, H], ordered (layer0 fwd, layer0 bwd, ..., top fwd, top bwd);
        # pack_padded_sequence with enforce_sorted=False restores the batch order.
        features = torch.cat([hidden[-2], hidden[-1]], dim=1)
        return self.dropout(features)


@register_model("bilstm")
def bilstm(
    num_classes: PositiveInt,
    in_channels: PositiveInt = 3,
    head: HeadName = "linear",
    vocab_size: int | None = None,
    embed_dim: PositiveInt = 100,
    hidden_dim: PositiveInt = 256,
    num_layers: PositiveInt = 2,
    dropout: Fraction = 0.5,
    padding_idx: int = 0,
    seed: int = 0,
) -> Classifier:
    """2-layer bidirectional LSTM text classifier (LDAM paper, IMDB); features 2·hidden_dim.

    ``in_channels`` is accepted for the common factory signature and ignored. Init: embedding
    N(0, 1) with the padding row zero; LSTM weights and biases U(−1/√H, 1/√H) (PyTorch's default);
    head ``nn.Linear`` default; all drawn from a generator seeded ``seed``.
    """
    del in_channels
    if vocab_size is None or vocab_size < 2:
        raise ConfigError("bilstm needs model.vocab_size (the vocabulary length, e.g. len(vocab)); set it")
    generator = seeded_generator(seed)
    with torch.random.fork_rng(devices=[]):  # construction must not disturb the global RNG
        backbone = BiLSTMBackbone(vocab_size, embed_dim, hidden_dim, num_layers, dropout, padding_idx)
    with torch.no_grad():
        backbone.embedding.weight.normal_(0.0, 1.0, generator=generator)
        backbone.embedding.weight[padding_idx].zero_()
        bound = 1.0 / math.sqrt(hidden_dim)
        for parameter in backbone.lstm.parameters():
            parameter.uniform_(-bound, bound, generator=generator)
    classifier = make_head(head, backbone.feature_dim, num_classes, generator)
    return Classifier(backbone, classifier, backbone.feature_dim, num_classes)
