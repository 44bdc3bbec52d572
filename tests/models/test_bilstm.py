"""BiLSTM: features equal the LSTM recurrence written out in float64; padding never matters."""

from __future__ import annotations

import torch

from longtail.models import create_model


def _model(**kw: object) -> torch.nn.Module:
    params = {"vocab_size": 30, "embed_dim": 5, "hidden_dim": 4, "seed": 0}
    params.update(kw)
    return create_model("bilstm", 3, **params).eval()


def _run_direction(
    lstm: torch.nn.LSTM, layer: int, reverse: bool, inputs: list[torch.Tensor]
) -> list[torch.Tensor]:
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    w_ih = getattr(lstm, "weight_ih" + suffix).detach().double()
    w_hh = getattr(lstm, "weight_hh" + suffix).detach().double()
    b = (getattr(lstm, "bias_ih" + suffix) + getattr(lstm, "bias_hh" + suffix)).detach().double()
    hidden = w_hh.shape[1]
    h = torch.zeros(hidden, dtype=torch.float64)
    c = torch.zeros(hidden, dtype=torch.float64)
    outputs: list[torch.Tensor] = [torch.empty(0)] * len(inputs)
    order = range(len(inputs) - 1, -1, -1) if reverse else range(len(inputs))
    for t in order:
        gates = w_ih @ inputs[t] + w_hh @ h + b
        i, f, g, o = gates.split(hidden)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outputs[t] = h
    return outputs


def _manual_features(model: torch.nn.Module, tokens: list[int]) -> torch.Tensor:
    backbone = model.backbone
    inputs = [backbone.embedding.weight[t].detach().double() for t in tokens]
    for layer in range(backbone.lstm.num_layers):
        forward = _run_direction(backbone.lstm, layer, False, inputs)
        backward = _run_direction(backbone.lstm, layer, True, inputs)
        inputs = [torch.cat([f, b]) for f, b in zip(forward, backward)]
    # final forward state = output at the last token; final backward state = output at the first.
    hidden = backbone.lstm.hidden_size
    return torch.cat([inputs[-1][:hidden], inputs[0][hidden:]])


def test_features_match_recurrence_in_float64() -> None:
    model = _model()
    sequences = [[4, 9, 2, 17, 3], [5, 6], [12]]
    ids = torch.zeros(3, 5, dtype=torch.long)
    for row, tokens in enumerate(sequences):
        ids[row, : len(tokens)] = torch.tensor(tokens)
    with torch.no_grad():
        features, logits = model(ids)
    for row, tokens in enumerate(sequences):
        expected = _manual_features(model, tokens)
        torch.testing.assert_close(features[row].double(), expected, rtol=1e-5, atol=1e-6)
    w, b = model.head.weight.detach().double(), model.head.bias.detach().double()
    torch.testing.assert_close(logits.double(), features.double() @ w.T + b, rtol=1e-5, atol=1e-6)


def test_padding_and_batch_order_do_not_change_features() -> None:
    model = _model()
    ids = torch.tensor([[3, 8, 1, 0], [7, 0, 0, 0], [2, 2, 5, 9]])
    with torch.no_grad():
        base, _ = model(ids)
        padded, _ = model(torch.cat([ids, torch.zeros(3, 6, dtype=torch.long)], dim=1))
        permuted, _ = model(ids[[2, 0, 1]])
        explicit, _ = model(ids, torch.tensor([3, 1, 4]))
    torch.testing.assert_close(padded, base)
    torch.testing.assert_close(permuted, base[[2, 0, 1]])
    torch.testing.assert_close(explicit, base)


def test_empty_text_row_is_finite() -> None:
    model = _model()
    with torch.no_grad():
        features, logits = model(torch.tensor([[0, 0, 0], [4, 5, 0]]))
    assert torch.isfinite(features).all() and torch.isfinite(logits).all()
    torch.testing.assert_close(features[0].double(), _manual_features(model, [0]))


def test_padding_embedding_is_zero_and_dropout_only_in_training() -> None:
    model = _model(dropout=0.5)
    assert torch.count_nonzero(model.backbone.embedding.weight[0]) == 0
    ids = torch.tensor([[3, 4, 5, 6]])
    model.train()
    torch.manual_seed(0)  # dropout masks come from the global RNG, as in any PyTorch model
    train_a, _ = model(ids)
    train_b, _ = model(ids)
    assert not torch.equal(train_a, train_b)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(ids)[0], model(ids)[0])
