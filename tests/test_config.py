import pytest
import yaml

from longtail.config import (
    Config,
    config_diff,
    dump_yaml,
    from_dict,
    load_config,
    parse_value,
    save_config,
    valid_keys,
)
from longtail.errors import ConfigError


def test_defaults_and_required_keys():
    config = load_config(None)
    assert isinstance(config, Config)
    assert {"train.epochs", "data.imbalance_ratio", "optim.milestones", "eval.many_threshold"} <= set(valid_keys())
    assert config.eval.many_threshold == 100 and config.eval.few_threshold == 20
    assert config.train.report_best_on_test is False


def test_overrides_are_typed():
    config = load_config(
        None,
        [
            "train.epochs=20",
            "data.imbalance_ratio=10",  # int given for a float field
            "optim.lr=1e-3",  # YAML 1.1 reads this as a string; accepted as float
            "optim.milestones=[13, 15]",
            "optim.nesterov=true",
            "data.root=123",  # a string field keeps the literal text
            "loss.name=ldam",
            "loss.params.s=30",
            "loss.params.max_m=0.5",
            "sampler.name=null",
            "data.test_distribution=0.5,0.5",
        ],
    )
    assert config.train.epochs == 20 and isinstance(config.train.epochs, int)
    assert config.data.imbalance_ratio == 10.0 and isinstance(config.data.imbalance_ratio, float)
    assert config.optim.lr == 1e-3
    assert config.optim.milestones == [13, 15]
    assert config.optim.nesterov is True
    assert config.data.root == "123"
    assert config.loss.params == {"s": 30, "max_m": 0.5}
    assert config.sampler.name is None
    assert config.data.test_distribution == [0.5, 0.5]
    assert load_config(None, ["optim.milestones=160,180"]).optim.milestones == [160, 180]


@pytest.mark.parametrize(
    "override, expected",
    [
        ("train.epochs=abc", "'train.epochs' expects int"),
        ("train.epochs=2.5", "'train.epochs' expects int"),
        ("optim.lr=fast", "'optim.lr' expects float"),
        ("optim.nesterov=maybe", "'optim.nesterov' expects bool"),
        ("optim.milestones=[a]", "'optim.milestones' expects list of int"),
        ("optim.lr=nan", "finite"),
    ],
)
def test_wrong_type_names_key_and_type(override, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(None, [override])


@pytest.mark.parametrize(
    "override, suggestion",
    [
        ("train.epoch=3", "train.epochs"),
        ("trian.epochs=3", "train.epochs"),
        ("data.imbalance_ration=5", "data.imbalance_ratio"),
        ("optim.learning_rate=0.1", None),
    ],
)
def test_unknown_key_suggests_closest(override, suggestion):
    with pytest.raises(ConfigError, match="unknown config key") as info:
        load_config(None, [override])
    if suggestion:
        assert f"did you mean {suggestion!r}" in str(info.value)


def test_bad_override_syntax_and_choices():
    with pytest.raises(ConfigError, match="key.sub=value"):
        load_config(None, ["train.epochs"])
    with pytest.raises(ConfigError, match="choose one of"):
        load_config(None, ["optim.name=rmsprop"])
    with pytest.raises(ConfigError, match="few_threshold"):
        load_config(None, ["eval.few_threshold=200"])
    with pytest.raises(ConfigError, match="must be >= 1"):
        load_config(None, ["train.epochs=0"])


def test_yaml_base_inheritance(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "base.yaml").write_text(
        yaml.safe_dump({"train": {"epochs": 16}, "loss": {"name": "ldam", "params": {"s": 30, "max_m": 0.5}}})
    )
    (tmp_path / "sub" / "child.yaml").write_text(
        "base: ../base.yaml\nloss:\n  params: {max_m: 0.3}\noptim: {lr: 0.2}\n"
    )
    config = load_config(tmp_path / "sub" / "child.yaml", ["train.epochs=4"])
    assert config.train.epochs == 4
    assert config.loss.name == "ldam" and config.loss.params == {"s": 30, "max_m": 0.3}
    assert config.optim.lr == 0.2


def test_yaml_errors(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="loops"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "bad.yaml").write_text("train:\n  epoks: 3\n")
    with pytest.raises(ConfigError, match="did you mean 'train.epochs'"):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="'train.epochs' expects int"):
        from_dict({"train": {"epochs": "many"}})


def test_save_roundtrip_and_diff(tmp_path):
    config = load_config(None, ["train.epochs=7", "loss.name=cdt", "loss.params.gamma=0.3"])  # a ce gamma is refused
    save_config(config, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == config
    assert yaml.safe_load(dump_yaml(config))["train"]["epochs"] == 7
    changed = load_config(tmp_path / "config.yaml", ["train.epochs=8", "runtime.progress=line"])
    diff = config_diff(config, changed)
    assert diff == ["train.epochs: 7 -> 8"]  # runtime-only keys are not differences


def test_parse_value():
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_value("null") is None and parse_value("abc") == "abc"
    assert parse_value("{s: 30}") == {"s": 30}
