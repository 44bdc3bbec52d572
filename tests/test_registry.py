"""The one construction path: Registry.create / check bind keyword arguments against the signature."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from longtail.errors import ConfigError
from longtail.registry import (
    LOSSES,
    MODELS,
    SAMPLERS,
    SCHEDULES,
    Fraction,
    NonNegative,
    PositiveInt,
    Registry,
)


def _registry() -> tuple[Registry, list[dict[str, Any]]]:
    built: list[dict[str, Any]] = []
    reg = Registry("widget", (), runtime=("class_counts",))

    @reg.register("margin")
    class Margin:
        def __init__(
            self, class_counts: list[int], scale: float, margin: NonNegative = 0.5,
            mode: Literal["a", "b"] = "a", steps: PositiveInt = 1, beta: Fraction | None = None,
        ) -> None:
            built.append({"scale": scale, "margin": margin, "mode": mode, "steps": steps, "beta": beta})

    @reg.register("scaled")
    class Scaled(Margin):
        def __init__(self, class_counts: list[int], extra: bool = False, **kwargs: Any) -> None:
            super().__init__(class_counts, **kwargs)

    return reg, built


def test_create_binds_and_widens_ints_to_floats():
    reg, built = _registry()
    reg.create("margin", class_counts=[3, 1], scale=2, margin=1)
    assert built == [{"scale": 2.0, "margin": 1.0, "mode": "a", "steps": 1, "beta": None}]
    assert isinstance(built[0]["scale"], float) and isinstance(built[0]["margin"], float)
    reg.create("scaled", class_counts=[3, 1], scale=1.0, extra=True, steps=3)  # **kwargs followed up the MRO
    assert built[-1]["steps"] == 3


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"scale": 1.0, "margni": 0.1}, "unknown parameter 'margni' for widget 'margin'; did you mean 'margin'?"),
        ({"scale": 1.0, "zzz": 1}, r"unknown parameter 'zzz' for widget 'margin' \(known: scale, margin, mode"),
        ({}, "widget 'margin' needs parameter\\(s\\) scale"),
        ({"scale": "1.0"}, "widget 'margin' parameter scale must be a finite number, got '1.0'"),
        ({"scale": True}, "parameter scale must be a finite number, got True"),
        ({"scale": float("nan")}, "parameter scale must be a finite number"),
        ({"scale": 1.0, "margin": -0.1}, "parameter margin must be >= 0, got -0.1"),
        ({"scale": 1.0, "mode": "c"}, "parameter mode must be one of a, b, got 'c'"),
        ({"scale": 1.0, "steps": 0}, "parameter steps must be >= 1, got 0"),
        ({"scale": 1.0, "steps": 1.5}, "parameter steps must be an integer, got 1.5"),
        ({"scale": 1.0, "beta": 1.0}, r"parameter beta must be in \[0, 1\) or null, got 1.0"),
        ({"scale": 1.0, "class_counts": [1]}, "parameter 'class_counts' is supplied by the engine"),
    ],
)
def test_check_and_create_fail_with_one_line_config_errors(params, message):
    reg, built = _registry()
    with pytest.raises(ConfigError, match=message) as info:
        reg.check("margin", params)
    assert "\n" not in str(info.value)
    if "class_counts" not in params:
        with pytest.raises(ConfigError, match=message):
            reg.create("margin", class_counts=[3, 1], **params)
    assert built == []  # neither check nor a failed create builds anything


def test_unknown_name_suggests_the_closest():
    reg, _ = _registry()
    with pytest.raises(ConfigError, match=r"unknown widget 'margn'; did you mean 'margin'\? \(known: margin, scaled\)"):
        reg.check("margn")


def test_check_does_not_construct():
    reg, built = _registry()
    reg.check("margin", {"scale": 3, "mode": "b"})
    reg.check("scaled", {"scale": 3, "extra": True})
    assert built == []


def test_the_real_registries_check_without_building():
    LOSSES.check("ldam", {"max_m": 0.3, "s": 30})
    with pytest.raises(ConfigError, match="loss 'ldam' parameter s must be > 0"):
        LOSSES.check("ldam", {"s": 0})
    with pytest.raises(ConfigError, match="schedule 'drw' parameter start_epoch must be >= 0"):
        SCHEDULES.check("drw", {"start_epoch": -1})
    # the rs schedule checks the sampler it names (cross-parameter check_params hook)
    with pytest.raises(ConfigError, match="unknown parameter 'q' for sampler 'class-balanced'"):
        SCHEDULES.check("rs", {"sampler_params": {"q": 0.5}})
    with pytest.raises(ConfigError, match="did you mean 'effective-number'"):
        SCHEDULES.check("rs", {"sampler": "effective-numbr"})
    with pytest.raises(ConfigError, match="unknown parameter 'q' for sampler 'square-root'"):
        SAMPLERS.check("square-root", {"q": 0.5})  # q is fixed for the square-root sampler
    SAMPLERS.check("power", {"q": 0.5, "num_samples": 10, "drop_last": True})
    with pytest.raises(ConfigError, match="parameter 'num_classes' is supplied by the engine"):
        MODELS.check("resnet32", {"num_classes": 3})
    with pytest.raises(ConfigError, match="model 'bilstm' parameter dropout must be in \\[0, 1\\)"):
        MODELS.check("bilstm", {"dropout": 1.0})
