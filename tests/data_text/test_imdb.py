"""IMDB reader, tokenizer, vocabulary, encoding and the 90%-negatives-removed subset."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from longtail.data.imdb import (
    IMDB_CLASSES,
    PAD_INDEX,
    UNK_INDEX,
    Vocabulary,
    encode,
    imdb_longtail_indices,
    load_imdb_split,
    tokenize,
)
from longtail.errors import ConfigError, DataError

POSITIVE_WORDS = ["great", "wonderful", "moving", "superb"]
NEGATIVE_WORDS = ["awful", "boring", "dull", "terrible"]


def _review(rng: np.random.Generator, positive: bool) -> str:
    words = POSITIVE_WORDS if positive else NEGATIVE_WORDS
    picked = rng.choice(words, size=3)
    return f"This movie was {picked[0]}.<br /><br />Really {picked[1]}, {picked[2]}!"


def write_aclimdb(root: Path, counts: dict[str, dict[str, int]], seed: int = 0) -> dict:
    """Write ``root/aclImdb/{train,test}/{neg,pos}/<id>_<rating>.txt`` as in the real archive."""
    rng = np.random.default_rng(seed)
    written: dict = {}
    for split, per_class in counts.items():
        for name, count in per_class.items():
            folder = root / "aclImdb" / split / name
            folder.mkdir(parents=True, exist_ok=True)
            written[(split, name)] = []
            for review_id in range(count):
                rating = int(rng.integers(7, 11)) if name == "pos" else int(rng.integers(1, 5))
                text = _review(rng, name == "pos")
                (folder / f"{review_id}_{rating}.txt").write_text(text, encoding="utf-8")
                written[(split, name)].append(text)
    # Things in the real archive the reader must ignore.
    (root / "aclImdb" / "train" / "unsup").mkdir(parents=True, exist_ok=True)
    (root / "aclImdb" / "train" / "unsup" / "0_0.txt").write_text("unlabelled", encoding="utf-8")
    (root / "aclImdb" / "train" / "urls_pos.txt").write_text("http://x", encoding="utf-8")
    (root / "aclImdb" / "imdb.vocab").write_text("the\n", encoding="utf-8")
    return written


@pytest.fixture
def imdb_root(tmp_path: Path) -> tuple[Path, dict]:
    written = write_aclimdb(tmp_path, {"train": {"pos": 12, "neg": 11}, "test": {"pos": 4, "neg": 5}})
    return tmp_path, written


def test_load_splits_layout_labels_and_order(imdb_root: tuple[Path, dict]) -> None:
    root, written = imdb_root
    train = load_imdb_split(root, train=True)
    assert train.classes == IMDB_CLASSES == ["neg", "pos"]
    assert train.images is None and train.paths is None
    assert train.labels.dtype == torch.int64
    assert train.labels.tolist() == [0] * 11 + [1] * 12
    # Numeric id order (10_*.txt after 2_*.txt), negatives first.
    assert train.texts == written[("train", "neg")] + written[("train", "pos")]
    test = load_imdb_split(root / "aclImdb", train=False)  # aclImdb itself also accepted
    assert test.labels.tolist() == [0] * 5 + [1] * 4
    assert test.texts == written[("test", "neg")] + written[("test", "pos")]


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_missing_root_folder_and_empty_split(tmp_path: Path) -> None:
    with pytest.raises(DataError) as error:
        load_imdb_split(tmp_path / "nowhere", train=True)
    assert "aclImdb" in _one_line(error) and "download" in _one_line(error)
    write_aclimdb(tmp_path, {"train": {"pos": 2, "neg": 2}})
    with pytest.raises(DataError) as error:
        load_imdb_split(tmp_path, train=False)
    assert "test" in _one_line(error)
    for path in (tmp_path / "aclImdb" / "train" / "neg").iterdir():
        path.unlink()
    with pytest.raises(DataError) as error:
        load_imdb_split(tmp_path, train=True)
    assert "no .txt reviews" in _one_line(error) and "neg" in _one_line(error)


def test_tokenize() -> None:
    assert tokenize("Great film!<br /><br />Didn't like the END...") == [
        "great",
        "film",
        "!",
        "didn't",
        "like",
        "the",
        "end",
        ".",
        ".",
        ".",
    ]
    assert tokenize("A<br/>B<BR>c 9/10") == ["a", "b", "c", "9", "/", "10"]
    assert tokenize("") == []


def test_vocabulary_build_matches_counts() -> None:
    texts = ["b a c a", "a b d!", "e e e e"]
    vocab = Vocabulary.build(texts, min_freq=2)
    counts = Counter(token for text in texts for token in text.replace("!", " !").split())
    kept = sorted((t for t, n in counts.items() if n >= 2), key=lambda t: (-counts[t], t))
    assert kept == ["e", "a", "b"]
    assert vocab.itos == ["<pad>", "<unk>"] + kept
    assert vocab.stoi["<pad>"] == PAD_INDEX == 0 and vocab.stoi["<unk>"] == UNK_INDEX == 1
    assert Vocabulary.build(texts, max_size=2).itos == ["<pad>", "<unk>", "e", "a"]
    assert Vocabulary.build(texts, max_size=0).itos == ["<pad>", "<unk>"]
    assert vocab.lookup(["a", "zzz", "e"]) == [3, 1, 2]
    with pytest.raises(ConfigError):
        Vocabulary.build(texts, min_freq=0)


def test_vocabulary_save_load(tmp_path: Path) -> None:
    vocab = Vocabulary.build(["über café the the", "the café"], min_freq=1, max_size=10)
    path = tmp_path / "vocab.json"
    vocab.save(path)
    loaded = Vocabulary.load(path)
    assert loaded == vocab and loaded.stoi == vocab.stoi
    assert loaded.min_freq == 1 and loaded.max_size == 10
    with pytest.raises(DataError) as error:
        Vocabulary.load(tmp_path / "missing.json")
    assert "not found" in _one_line(error)
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError) as error:
        Vocabulary.load(tmp_path / "bad.json")
    _one_line(error)
    (tmp_path / "other.json").write_text('{"itos": ["a"]}', encoding="utf-8")
    with pytest.raises(DataError, match="not a longtail vocabulary"):
        Vocabulary.load(tmp_path / "other.json")


def test_encode_pads_truncates_and_maps_unknown() -> None:
    vocab = Vocabulary(["<pad>", "<unk>", "good", "film", "."])
    ids, lengths = encode(["Good film.", "", "bad film good good good"], vocab, max_len=4)
    expected = torch.tensor([[2, 3, 4, 0], [0, 0, 0, 0], [1, 3, 2, 2]])
    # Width = min(max_len, longest) = 4; row 3 truncated to its first 4 tokens.
    assert torch.equal(ids, expected)
    assert lengths.tolist() == [3, 0, 4]
    assert ids.dtype == torch.int64 and lengths.dtype == torch.int64
    short, short_lengths = encode(["film"], vocab, max_len=50)
    assert short.tolist() == [[3]] and short_lengths.tolist() == [1]
    assert encode([""], vocab, 5)[0].shape == (1, 1)
    with pytest.raises(ConfigError):
        encode(["x"], vocab, max_len=0)


def test_longtail_indices_remove_90_percent_of_negatives() -> None:
    labels = torch.tensor([1, 0] * 12_500)
    kept = imdb_longtail_indices(labels, remove_fraction=0.9, seed=0)
    assert kept.dtype == np.int64 and np.all(np.diff(kept) > 0)
    kept_labels = labels.numpy()[kept]
    assert (kept_labels == 1).sum() == 12_500 and (kept_labels == 0).sum() == 1_250  # LDAM Table 1
    assert np.array_equal(kept, imdb_longtail_indices(labels, 0.9, seed=0))
    assert not np.array_equal(kept, imdb_longtail_indices(labels, 0.9, seed=1))
    assert len(imdb_longtail_indices(labels, 0.0, seed=0)) == 25_000
    small = np.array([0] * 11 + [1] * 3)
    assert (small[imdb_longtail_indices(small, 0.9, 0)] == 0).sum() == 1  # round(9.9) = 10 removed
    with pytest.raises(ConfigError):
        imdb_longtail_indices(labels, 1.0, seed=0)
    with pytest.raises(DataError):
        imdb_longtail_indices([0, 1, 2], 0.5, seed=0)


def test_reader_to_bilstm_end_to_end(tmp_path: Path) -> None:
    from longtail.models import create_model

    write_aclimdb(tmp_path, {"train": {"pos": 20, "neg": 20}})
    train = load_imdb_split(tmp_path, train=True)
    train = train.subset(imdb_longtail_indices(train.labels, 0.5, seed=0))
    assert train.class_counts() == [10, 20]
    vocab = Vocabulary.build(train.texts, min_freq=1)
    ids, lengths = encode(train.texts, vocab, max_len=32)
    model = create_model("bilstm", 2, vocab_size=len(vocab), embed_dim=8, hidden_dim=8, dropout=0.0, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(15):
        _, logits = model(ids, lengths)
        loss = torch.nn.functional.cross_entropy(logits, train.labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        predictions = model(ids)[1].argmax(1)
    assert (predictions == train.labels).float().mean() == 1.0
