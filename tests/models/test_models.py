"""Every registered model: shapes, parameter counts, heads, channels_last, bf16 autocast, seeding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from longtail.errors import ConfigError
from longtail.models import LinearHead, NormedLinearHead, count_parameters, create_model
from longtail.models.resnet_cifar import ShortcutA
from longtail.registry import MODELS

# Smallest input each model is meant for (kept small: 2 CPU cores shared).
INPUTS = {
    "resnet32": {"kw": {}, "x": lambda g: torch.randn(2, 3, 32, 32, generator=g)},
    "resnet18": {"kw": {}, "x": lambda g: torch.randn(2, 3, 64, 64, generator=g)},
    "resnet50": {"kw": {}, "x": lambda g: torch.randn(2, 3, 64, 64, generator=g)},
    "resnet10": {"kw": {}, "x": lambda g: torch.randn(2, 3, 64, 64, generator=g)},
    # zero-initialised residual branches: 152 layers of train-mode BN on a batch of 2 otherwise amplify
    # float rounding (channels_last vs contiguous) to ~1e-3, beyond the shared 1e-4 tolerance
    "resnet152": {"kw": {"stem": "cifar", "zero_init_residual": True}, "x": lambda g: torch.randn(2, 3, 16, 16, generator=g)},
    "resnext50_32x4d": {"kw": {"stem": "cifar"}, "x": lambda g: torch.randn(2, 3, 16, 16, generator=g)},
    "bilstm": {
        "kw": {"vocab_size": 50, "embed_dim": 8, "hidden_dim": 6},
        "x": lambda g: torch.tensor([[5, 7, 9, 11, 0], [3, 4, 0, 0, 0]]),
    },
}
FEATURE_DIMS = {"resnet32": 64, "resnet18": 512, "resnet50": 2048, "bilstm": 12, "resnet10": 512,
                "resnet152": 2048, "resnext50_32x4d": 2048}
IMAGE_MODELS = ["resnet32", "resnet18", "resnet50"]


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_every_registered_model_is_covered() -> None:
    assert set(MODELS.names()) == set(INPUTS)


@pytest.mark.parametrize("name", sorted(INPUTS))
@pytest.mark.parametrize("head", ["linear", "normed-linear"])
def test_contract_shapes_and_heads(name: str, head: str) -> None:
    model = create_model(name, num_classes=7, head=head, **INPUTS[name]["kw"])
    model.eval()
    x = INPUTS[name]["x"](_g())
    with torch.no_grad():
        features, logits = model(x)
    assert model.feature_dim == FEATURE_DIMS[name]
    assert features.shape == (2, FEATURE_DIMS[name]) and logits.shape == (2, 7)
    assert features.dtype == torch.float32 and logits.dtype == torch.float32
    assert isinstance(model.head, NormedLinearHead if head == "normed-linear" else LinearHead)
    assert model.head.class_weight_matrix().shape == (7, FEATURE_DIMS[name])
    torch.testing.assert_close(logits, model.head(model.backbone(x)))
    if head == "normed-linear":
        assert model.head.bias is None and logits.abs().max() <= 1 + 1e-6
    else:
        assert model.head.bias.shape == (7,)


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_bf16_autocast_and_channels_last_forward_backward(name: str) -> None:
    model = create_model(name, num_classes=3, **INPUTS[name]["kw"])
    x = INPUTS[name]["x"](_g(1))
    y = torch.tensor([0, 2])
    model.train()
    _, reference = model(x)
    if x.dim() == 4:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
        # channels_last changes the memory layout only, not the numbers.
        _, logits_cl = model(x)
        torch.testing.assert_close(logits_cl, reference, rtol=1e-4, atol=1e-4)
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        features, logits = model(x)
        assert logits.dtype == torch.float32 and features.dtype == torch.float32
        loss = F.cross_entropy(logits, y)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def _conv(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k


def test_resnet32_parameter_count() -> None:
    # He et al. CIFAR ResNet-32: stem conv3×3(3→16)+BN, 3 stages × 5 blocks of two conv3×3+BN,
    # option-A shortcuts have no parameters, linear head 64→10. Counted by hand:
    total = _conv(3, 16, 3) + 2 * 16
    cin = 16
    for width in (16, 32, 64):
        for _ in range(5):
            total += _conv(cin, width, 3) + 2 * width + _conv(width, width, 3) + 2 * width
            cin = width
    total += 64 * 10 + 10
    model = create_model("resnet32", 10)
    assert count_parameters(model) == total == 464_154
    assert 0.455e6 < total < 0.465e6  # "0.46M" in the reference code's table
    normed = create_model("resnet32", 10, head="normed-linear")
    assert count_parameters(normed) == total - 10  # no bias
    # Option A: no 1×1 projection convolutions anywhere.
    assert all(m.kernel_size == (3, 3) for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert sum(isinstance(m, ShortcutA) for m in model.modules()) == 2


def test_resnet32_single_channel_28_and_32() -> None:
    model = create_model("resnet32", 10, in_channels=1).eval()
    assert model.backbone.conv1.in_channels == 1
    for size in (28, 32):
        features, logits = model(torch.randn(3, 1, size, size, generator=_g()))
        assert features.shape == (3, 64) and logits.shape == (3, 10)


def test_shortcut_a_is_subsample_and_zero_pad() -> None:
    x = torch.randn(2, 16, 6, 6, generator=_g())
    out = ShortcutA(16, 32, 2)(x)
    expected = torch.zeros(2, 32, 3, 3)
    for i in range(3):
        for j in range(3):
            expected[:, 8:24, i, j] = x[:, :, 2 * i, 2 * j]
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_resnet32_reference_init() -> None:
    model = create_model("resnet32", 10)
    conv = model.backbone.layer3[4].conv2.weight.detach().double()  # fan_in 64·9
    expected_std = (2 / (64 * 9)) ** 0.5
    assert abs(conv.std().item() - expected_std) / expected_std < 0.03
    assert abs(conv.mean().item()) < 0.05 * expected_std * 10
    bn = model.backbone.layer2[0].bn1
    assert torch.equal(bn.weight, torch.ones_like(bn.weight)) and torch.equal(
        bn.bias, torch.zeros_like(bn.bias)
    )


def _resnet_backbone_count(block: str, layers: tuple[int, ...], in_channels: int = 3, stem_k: int = 7) -> int:
    total = _conv(in_channels, 64, stem_k) + 2 * 64
    cin = 64
    expansion = 1 if block == "basic" else 4
    for index, (planes, count) in enumerate(zip((64, 128, 256, 512), layers)):
        for b in range(count):
            stride = 2 if (index > 0 and b == 0) else 1
            out = planes * expansion
            if block == "basic":
                total += _conv(cin, planes, 3) + 2 * planes + _conv(planes, planes, 3) + 2 * planes
            else:
                total += _conv(cin, planes, 1) + 2 * planes + _conv(planes, planes, 3) + 2 * planes
                total += _conv(planes, out, 1) + 2 * out
            if stride != 1 or cin != out:
                total += _conv(cin, out, 1) + 2 * out
            cin = out
    return total


def test_resnet18_and_resnet50_parameter_counts() -> None:
    r18 = create_model("resnet18", 200)
    assert count_parameters(r18.backbone) == _resnet_backbone_count("basic", (2, 2, 2, 2)) == 11_176_512
    assert count_parameters(r18.head) == 512 * 200 + 200
    r50 = create_model("resnet50", 1000)
    count = count_parameters(r50.backbone)
    assert count == _resnet_backbone_count("bottleneck", (3, 4, 6, 3)) == 23_508_032
    assert 23.4e6 < count < 23.6e6  # "≈ 23.5 M"
    assert count_parameters(r50) == 25_557_032  # + 2048·1000 + 1000: torchvision's ResNet-50
    cifar_stem = create_model("resnet18", 10, stem="cifar", in_channels=1)
    assert count_parameters(cifar_stem.backbone) == _resnet_backbone_count("basic", (2, 2, 2, 2), 1, 3)


@pytest.mark.parametrize("stem, size", [("imagenet", 2), ("cifar", 8)])
def test_resnet18_stems_resolution(stem: str, size: int) -> None:
    model = create_model("resnet18", 5, stem=stem).eval()
    seen = {}

    def hook(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        seen["shape"] = output.shape

    model.backbone.layer4.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64, generator=_g()))
    assert seen["shape"] == (1, 512, size, size)


def test_zero_init_residual() -> None:
    model = create_model("resnet50", 4, zero_init_residual=True)
    block = model.backbone.layer2[1]
    assert torch.count_nonzero(block.bn3.weight) == 0
    assert torch.count_nonzero(block.bn1.weight) == block.bn1.weight.numel()


@pytest.mark.parametrize("name", ["resnet32", "bilstm"])
def test_seeded_init_and_global_rng_untouched(name: str) -> None:
    state = torch.random.get_rng_state()
    a = create_model(name, 4, seed=3, **INPUTS[name]["kw"])
    assert torch.equal(torch.random.get_rng_state(), state)
    b = create_model(name, 4, seed=3, **INPUTS[name]["kw"])
    c = create_model(name, 4, seed=4, **INPUTS[name]["kw"])
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_state_dict_round_trip(name: str) -> None:
    a = create_model(name, 4, head="normed-linear", seed=1, **INPUTS[name]["kw"]).eval()
    b = create_model(name, 4, head="normed-linear", seed=2, **INPUTS[name]["kw"]).eval()
    b.load_state_dict(a.state_dict())
    x = INPUTS[name]["x"](_g())
    with torch.no_grad():
        torch.testing.assert_close(a(x)[1], b(x)[1], rtol=0, atol=0)


def test_create_model_errors() -> None:
    with pytest.raises(ConfigError, match="did you mean 'resnet32'"):
        create_model("resnet23", 10)
    with pytest.raises(ConfigError, match="head must be one of linear, normed-linear, got 'cosine'"):
        create_model("resnet32", 10, head="cosine")
    with pytest.raises(ConfigError, match="unknown parameter 'stme' for model 'resnet18'; did you mean 'stem'"):
        create_model("resnet18", 10, stme="cifar")
    with pytest.raises(ConfigError, match="stem"):
        create_model("resnet18", 10, stem="tiny")
    with pytest.raises(ConfigError, match="vocab_size"):
        create_model("bilstm", 2)
    with pytest.raises(ConfigError, match="num_classes"):
        create_model("resnet32", 0)


def test_every_model_has_a_list_summary() -> None:
    for name in MODELS.names():
        assert MODELS.summary(name), f"{name} needs a docstring first line for `longtail list models`"
