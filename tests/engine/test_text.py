"""`longtail train` / `longtail eval` on a text set: IMDB (LDAM paper Table 1) with the BiLSTM.

Data: a tiny ``aclImdb`` folder in the real layout. The vocabulary must come from the long-tailed
training subset only (not from removed negatives, held-out or test reviews).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from longtail.cli import main
from longtail.config import load_config
from longtail.data.imdb import PAD_INDEX, Vocabulary, encode, load_imdb_split, tokenize
from longtail.data.loaders import TensorLoader
from longtail.engine.data import TrainData
from longtail.engine.distributed import DistInfo
from longtail.engine.trainer import build_model

REPO = Path(__file__).resolve().parents[2]
ERM = REPO / "configs" / "imdb" / "erm.yaml"
COMMON = ["good", "bad", "film", "plot", "actor", "the", "a", "and"]


def write_reviews(root: Path, counts: dict[str, dict[str, int]]) -> Path:
    """``root/aclImdb/{split}/{neg,pos}/<i>_<rating>.txt``; review i of (split, class) contains the
    token ``u<split><class><i>`` that occurs nowhere else, plus common words."""
    for split, per_class in counts.items():
        for name, count in per_class.items():
            folder = root / "aclImdb" / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                words = [COMMON[(i + k) % len(COMMON)] for k in range(3 + i % 4)]
                mood = "great" if name == "pos" else "awful"
                text = f"{' '.join(words)} {mood}!<br />u{split}{name}{i} {mood} film."
                (folder / f"{i}_{8 if name == 'pos' else 2}.txt").write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def imdb_root(tmp_path_factory) -> Path:
    return write_reviews(tmp_path_factory.mktemp("imdb"), {"train": {"pos": 20, "neg": 20},
                                                           "test": {"pos": 3, "neg": 3}})


def _overrides(root: Path) -> list[str]:
    return [f"data.root={root}", "data.max_len=20", "data.workers=0", "optim.batch_size=8", "train.epochs=1",
            "model.params.embed_dim=8", "model.params.hidden_dim=8", "model.params.num_layers=1",
            "runtime.device=cpu", "runtime.progress=none", "runtime.num_threads=1", "eval.batch_size=16"]


def test_vocabulary_comes_from_the_training_subset_only(imdb_root: Path):
    config = load_config(ERM, [*_overrides(imdb_root), "data.heldout_per_class=1"])
    data = TrainData(config, DistInfo(), torch.device("cpu"))
    train_texts = data.data.train.texts
    assert data.class_counts == [1, 19]  # 20 → 2 negatives (ρ = 10), then 1 per class held out
    # Independently: the table from the training subset's texts, nothing else.
    expected = Vocabulary.build(train_texts, min_freq=1, max_size=25000)
    assert data.vocab == expected and data.vocab_size == len(expected)
    train_tokens = {t for text in train_texts for t in tokenize(text)}
    assert set(data.vocab.itos[2:]) == train_tokens
    # Unique tokens of removed negatives, held-out and test reviews are out of the table.
    full = load_imdb_split(imdb_root, train=True).texts + load_imdb_split(imdb_root, train=False).texts
    others = [t for text in full if text not in train_texts for t in tokenize(text) if t.startswith("u")]
    assert len(others) == 18 + 2 + 6  # 18 removed negatives, 2 held-out reviews, 6 test reviews
    assert not any(t in data.vocab for t in others)
    assert "utest" not in "".join(data.vocab.itos)
    # Every split is encoded once with that table, truncated at data.max_len.
    ids, _ = encode(train_texts, expected, 20)
    assert data.train_ids.dtype == torch.int64 and torch.equal(data.train_ids, ids)
    test_ids, _ = encode(data.data.test.texts, expected, 20)
    assert torch.equal(data.test.ids, test_ids) and (test_ids == 1).any()  # <unk> for test-only words
    assert data.heldout is not None and data.heldout.ids.shape[0] == 2


def test_vocabulary_options_and_loader(imdb_root: Path):
    config = load_config(ERM, [*_overrides(imdb_root), "data.min_freq=3", "data.max_vocab=5", "data.max_len=4"])
    data = TrainData(config, DistInfo(), torch.device("cpu"))
    counts: dict[str, int] = {}
    for text in data.data.train.texts:
        for token in tokenize(text):
            counts[token] = counts.get(token, 0) + 1
    ranked = sorted((kv for kv in counts.items() if kv[1] >= 3), key=lambda kv: (-kv[1], kv[0]))[:5]
    assert data.vocab.itos == ["<pad>", "<unk>"] + [t for t, _ in ranked]
    assert data.train_ids.shape == (len(data.data.train.texts), 4)
    loader = data.train_loader(("instance", {}), 0)
    batches = list(loader)
    assert len(batches) == len(loader) == -(-len(data.data.train.texts) // 8)
    seen = torch.cat([y for _, y in batches])
    assert sorted(seen.tolist()) == sorted(data.data.train.labels.tolist())
    for x, y in batches:
        assert x.dtype == torch.int64 and x.shape[1] == 4 and x.shape[0] == y.shape[0]
        assert int(x.max()) < len(data.vocab) and int(x.min()) >= PAD_INDEX
    model = build_model(config, data)
    assert model.backbone.embedding.num_embeddings == len(data.vocab)  # vocab_size passed by the engine
    with pytest.raises(ValueError, match="augment"):
        TensorLoader(data.train_ids, data.data.train.labels, 4, augment=lambda x: x)


def test_train_and_eval_imdb_config_from_the_cli(imdb_root: Path, tmp_path: Path):
    out = tmp_path / "run"
    assert main(["train", str(ERM), *_overrides(imdb_root), "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert 0.0 <= results["top1"] <= 1.0 and results["class_counts"] == [2, 20]
    assert set(results["groups"]) == {"many", "medium", "few"}
    assert len(results["per_class"]) == 2
    # The saved table is the one rebuilt from the training subset.
    config = load_config(out / "config.yaml")
    data = TrainData(config, DistInfo(), torch.device("cpu"))
    assert Vocabulary.load(out / "vocab.json") == data.vocab
    assert main(["eval", str(out)]) == 0
    evaluated = json.loads((out / "eval-plain.json").read_text())
    assert evaluated["top1"] == pytest.approx(results["top1"])
