"""Heads against their formulas written out in float64; fp32 under bf16 autocast."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from longtail.errors import ConfigError
from longtail.models import LinearHead, NormedLinearHead, make_head


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_linear_head_formula_and_matrix() -> None:
    head = LinearHead(6, 4, generator=_gen(0))
    x = torch.randn(5, 6, generator=_gen(1))
    w = head.weight.detach().double()
    b = head.bias.detach().double()
    expected = torch.empty(5, 4, dtype=torch.float64)
    for i in range(5):
        for c in range(4):
            expected[i, c] = sum(x[i, d].double() * w[c, d] for d in range(6)) + b[c]
    torch.testing.assert_close(head(x).double(), expected, rtol=1e-6, atol=1e-6)
    assert head.class_weight_matrix().shape == (4, 6)
    assert head.class_weight_matrix() is head.weight
    assert head.bias.shape == (4,)


def test_linear_head_default_init_bounds() -> None:
    head = LinearHead(64, 10, generator=_gen(0))
    bound = 1 / 64**0.5  # kaiming_uniform(a=√5) gives U(−1/√D, 1/√D)
    assert head.weight.abs().max() <= bound and head.bias.abs().max() <= bound
    assert head.weight.abs().max() > 0.8 * bound


def test_linear_head_kaiming_normal_init_std() -> None:
    head = LinearHead(400, 200, init="kaiming-normal", generator=_gen(0))
    std = head.weight.detach().double().std().item()
    assert abs(std - (2 / 400) ** 0.5) / (2 / 400) ** 0.5 < 0.03


def test_normed_linear_head_reference_storage_and_init() -> None:
    head = NormedLinearHead(8, 5, generator=_gen(0))
    assert head.weight.shape == (8, 5)  # [D, C], as NormedLinear in the LDAM-DRW code
    assert head.bias is None
    assert "bias" not in dict(head.named_parameters())
    # uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5): every column has norm 1e-5 · 1e5 = 1.
    torch.testing.assert_close(head.weight.detach().norm(dim=0), torch.ones(5), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(head.class_weight_matrix(), head.weight.t())
    assert head.class_weight_matrix().shape == (5, 8)


def test_normed_linear_head_is_cosine() -> None:
    head = NormedLinearHead(8, 5, generator=_gen(0))
    with torch.no_grad():
        head.weight.mul_(torch.linspace(0.5, 3.0, 5))  # unequal column norms must not matter
    x = torch.randn(6, 8, generator=_gen(2)) * 7
    w = head.weight.detach().double()
    expected = torch.empty(6, 5, dtype=torch.float64)
    for i in range(6):
        xi = x[i].double()
        for c in range(5):
            wc = w[:, c]
            expected[i, c] = (xi * wc).sum() / (xi.pow(2).sum().sqrt() * wc.pow(2).sum().sqrt())
    out = head(x)
    torch.testing.assert_close(out.double(), expected, rtol=1e-6, atol=1e-6)
    assert out.abs().max() <= 1 + 1e-6


@pytest.mark.parametrize("kind", ["linear", "normed-linear"])
def test_head_stays_fp32_under_bf16_autocast(kind: str) -> None:
    head = make_head(kind, 16, 3, _gen(0))
    x = torch.randn(4, 16, generator=_gen(3))
    reference = head(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        # Sanity: a plain linear layer *would* drop to bf16 here, so the check below can fail.
        assert F.linear(x, torch.randn(3, 16)).dtype == torch.bfloat16
        out = head(x.to(torch.bfloat16))
    assert out.dtype == torch.float32
    # Same as the float32 head applied to the bf16-rounded features, to float32 precision.
    torch.testing.assert_close(out, head(x.to(torch.bfloat16).float()), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out, reference, rtol=0.02, atol=0.02)


@pytest.mark.parametrize("kind", ["linear", "normed-linear"])
def test_head_seeded_and_reset(kind: str) -> None:
    a, b, c = make_head(kind, 7, 3, _gen(5)), make_head(kind, 7, 3, _gen(5)), make_head(kind, 7, 3, _gen(6))
    assert torch.equal(a.weight, b.weight)
    assert not torch.equal(a.weight, c.weight)
    a.reset_parameters(_gen(6))
    assert torch.equal(a.weight, c.weight)


def test_unknown_head() -> None:
    with pytest.raises(ConfigError, match="unknown head 'cosine'"):
        make_head("cosine", 4, 2)
    with pytest.raises(ConfigError, match="init"):
        LinearHead(4, 2, init="xavier")
