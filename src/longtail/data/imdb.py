"""IMDB movie reviews (Maas et al., ACL 2011) for the LDAM paper's text experiment (Table 1).

Reads the ``aclImdb`` folder as distributed (https://ai.stanford.edu/~amaas/data/sentiment/)::

    aclImdb/train/pos/<id>_<rating>.txt   aclImdb/train/neg/<id>_<rating>.txt
    aclImdb/test/pos/...                  aclImdb/test/neg/...

(``train/unsup`` and the ``.feat``/URL files are ignored). Labels: 0 = neg, 1 = pos. The long-tailed
training set of the LDAM paper removes 90% of the negative reviews (12,500 pos, 1,250 neg), seeded.
Texts are turned into ids with :func:`tokenize`, a :class:`Vocabulary` built on the training texts
and :func:`encode` (right-padded id matrix + lengths) for the ``bilstm`` model.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from longtail.data.split import Split
from longtail.errors import ConfigError, DataError

IMDB_CLASSES = ["neg", "pos"]
PAD_TOKEN, UNK_TOKEN = "<pad>", "<unk>"
PAD_INDEX, UNK_INDEX = 0, 1
_VOCAB_FORMAT = "longtail-vocabulary"

_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
# A word (letters/digits, with inner apostrophes: "don't", "director's") or one punctuation mark.
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[^\w\s]|_")
_FILE_NAME = re.compile(r"^(\d+)_(\d+)\.txt$")


def tokenize(text: str) -> list[str]:
    """Lower-case, replace ``<br />`` line breaks by spaces, split into words and punctuation marks.

    >>> tokenize("Great film!<br /><br />Didn't like the END...")
    ['great', 'film', '!', "didn't", 'like', 'the', 'end', '.', '.', '.']
    """
    return _TOKEN.findall(_BREAK.sub(" ", text).lower())


class Vocabulary:
    """Token ↔ id table built from training texts: ``<pad>`` = 0, ``<unk>`` = 1, then tokens by
    decreasing count (ties in alphabetical order, so the table is deterministic).

    ``min_freq``: a token needs at least this many occurrences; ``max_size``: keep at most this
    many tokens besides the two special ones (None: no limit). Unknown tokens map to ``<unk>``.
    """

    def __init__(self, itos: Sequence[str], min_freq: int = 1, max_size: int | None = None) -> None:
        if len(itos) < 2 or itos[PAD_INDEX] != PAD_TOKEN or itos[UNK_INDEX] != UNK_TOKEN:
            raise DataError(f"a vocabulary must start with {PAD_TOKEN!r}, {UNK_TOKEN!r}; rebuild it")
        self.itos = list(itos)
        self.stoi = {token: index for index, token in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise DataError("the vocabulary lists a token twice; rebuild it from the training texts")
        self.min_freq = min_freq
        self.max_size = max_size

    @classmethod
    def build(cls, texts: Iterable[str], min_freq: int = 1, max_size: int | None = None) -> Vocabulary:
        """Count the tokens of ``texts`` (training texts only) and keep the frequent ones."""
        if min_freq < 1:
            raise ConfigError(f"vocabulary min_freq must be >= 1, got {min_freq}")
        if max_size is not None and max_size < 0:
            raise ConfigError(f"vocabulary max_size must be >= 0 or None, got {max_size}")
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(tokenize(text))
        for special in (PAD_TOKEN, UNK_TOKEN):
            counts.pop(special, None)
        ranked = sorted(
            (item for item in counts.items() if item[1] >= min_freq), key=lambda kv: (-kv[1], kv[0])
        )
        if max_size is not None:
            ranked = ranked[:max_size]
        return cls([PAD_TOKEN, UNK_TOKEN] + [token for token, _ in ranked], min_freq, max_size)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def lookup(self, tokens: Iterable[str]) -> list[int]:
        """Ids of ``tokens`` (``<unk>`` = 1 for tokens not in the table)."""
        get = self.stoi.get
        return [get(token, UNK_INDEX) for token in tokens]

    def save(self, path: str | Path) -> None:
        """Write the table as JSON (``{"format", "min_freq", "max_size", "itos"}``)."""
        payload = {
            "format": _VOCAB_FORMAT,
            "min_freq": self.min_freq,
            "max_size": self.max_size,
            "itos": self.itos,
        }
        Path(path).write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        """Read a table written by :meth:`save`."""
        path = Path(path)
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(
                f"vocabulary file not found: {path}; build it with Vocabulary.build and save it"
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DataError(f"cannot read vocabulary {path}: {error}; rebuild it") from None
        if (
            not isinstance(payload, dict)
            or payload.get("format") != _VOCAB_FORMAT
            or not isinstance(payload.get("itos"), list)
        ):
            raise DataError(f"{path} is not a longtail vocabulary file; rebuild it with Vocabulary.build")
        return cls(payload["itos"], int(payload.get("min_freq", 1)), payload.get("max_size"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)}, min_freq={self.min_freq}, max_size={self.max_size})"


def encode(texts: Sequence[str], vocab: Vocabulary, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids of ``texts``, truncated to their first ``max_len`` tokens and right-padded with 0.

    Returns ``(ids, lengths)``: ``ids`` int64 [N, L] with L = min(max_len, longest text) (at least
    1), ``lengths`` int64 [N] = number of real tokens (0 for an empty text; the model reads such a
    row as one padding token).
    """
    if max_len < 1:
        raise ConfigError(f"max_len must be >= 1, got {max_len}")
    rows = [vocab.lookup(tokenize(text)[:max_len]) for text in texts]
    width = max([1] + [len(row) for row in rows])
    ids = torch.full((len(rows), width), PAD_INDEX, dtype=torch.int64)
    lengths = torch.zeros(len(rows), dtype=torch.int64)
    for index, row in enumerate(rows):
        if row:
            ids[index, : len(row)] = torch.tensor(row, dtype=torch.int64)
        lengths[index] = len(row)
    return ids, lengths


def _imdb_dir(root: str | Path) -> Path:
    root = Path(root)
    for candidate in (root / "aclImdb", root):
        if (candidate / "train").is_dir() or (candidate / "test").is_dir():
            return candidate
    raise DataError(
        f"IMDB not found under {root}: expected aclImdb/train/{{pos,neg}} and aclImdb/test/{{pos,neg}}; "
        "download aclImdb_v1.tar.gz from https://ai.stanford.edu/~amaas/data/sentiment/ and extract it there"
    )


def _sort_key(path: Path) -> tuple[int, int, str]:
    match = _FILE_NAME.match(path.name)
    return (0, int(match.group(1)), path.name) if match else (1, 0, path.name)


def load_imdb_split(root: str | Path, train: bool) -> Split:
    """Read ``aclImdb/{train,test}/{neg,pos}/*.txt`` into a ``Split`` with ``texts`` set.

    Order: all negative reviews, then all positive ones, each by the numeric id of the file name
    ``<id>_<rating>.txt``. ``root`` is the folder holding ``aclImdb`` or ``aclImdb`` itself.
    """
    split_dir = _imdb_dir(root) / ("train" if train else "test")
    texts: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(IMDB_CLASSES):
        folder = split_dir / name
        if not folder.is_dir():
            raise DataError(
                f"IMDB folder missing: {folder}; re-extract aclImdb_v1.tar.gz (it has {name}/ in train/ and test/)"
            )
        files = sorted((p for p in folder.iterdir() if p.suffix == ".txt" and p.is_file()), key=_sort_key)
        if not files:
            raise DataError(f"IMDB folder {folder} has no .txt reviews; re-extract aclImdb_v1.tar.gz")
        for path in files:
            try:
                texts.append(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError) as error:
                raise DataError(f"cannot read IMDB review {path}: {error}; re-extract the archive") from None
            labels.append(label)
    return Split(labels=torch.tensor(labels, dtype=torch.int64), classes=list(IMDB_CLASSES), texts=texts)


def imdb_longtail_indices(
    labels: torch.Tensor | np.ndarray | Sequence[int], remove_fraction: float = 0.9, seed: int = 0
) -> np.ndarray:
    """Indices kept after removing ``remove_fraction`` of the negative (label 0) reviews.

    LDAM paper §4.1 / Table 1: 90% of the negative training reviews are removed (12,500 → 1,250),
    the positive ones all kept. round(remove_fraction · n_neg) negatives, drawn without replacement
    by ``numpy.random.default_rng(seed)``, are dropped. Returns the kept indices sorted (int64).
    """
    if not 0.0 <= remove_fraction < 1.0:
        raise ConfigError(f"remove_fraction must be in [0, 1), got {remove_fraction}")
    label_array = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels, dtype=np.int64)
    if label_array.ndim != 1 or not np.isin(label_array, (0, 1)).all():
        raise DataError("IMDB labels must be a 1-d array of 0 (neg) and 1 (pos)")
    negatives = np.flatnonzero(label_array == 0)
    n_remove = int(round(remove_fraction * len(negatives)))
    if n_remove == len(negatives) and len(negatives) > 0:
        raise ConfigError(
            f"remove_fraction {remove_fraction} would remove every negative review; use a smaller one"
        )
    rng = np.random.default_rng(seed)
    removed = rng.choice(negatives, size=n_remove, replace=False) if n_remove else np.empty(0, np.int64)
    keep = np.ones(len(label_array), dtype=bool)
    keep[removed] = False
    return np.flatnonzero(keep).astype(np.int64)
