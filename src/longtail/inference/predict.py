"""``longtail predict``: top-k classes and probabilities of a trained run for images, lists and splits.

Inputs (:func:`resolve_inputs`): an image file; a folder (every image file below it, sorted); a list
file of ``relative/path [label]`` lines (ImageNet-LT style) or a CSV file with a ``path`` and an optional
``label`` column, read by the data sets' reader (:func:`longtail.data.listfile.read_image_list`: paths
relative to ``root``, default the list's folder; the label, an index or a class name, is copied to the
output); or ``split:test``, ``split:heldout``, ``split:train`` — the run's own data (images exactly as the
engine evaluates them).

Files are decoded with Pillow to the run's channels (grey or RGB) and brought to its size by the run's
own evaluation transform (:func:`file_transform`: shorter side to S and a centre crop, or for
ImageNet-style runs shorter side to S·256/224 and the centre S×S), then normalised ``(u8/255 − mean)/std``
with the run's mean/std. An image that cannot be read is reported and
skipped; the rest are predicted.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from longtail.data.images import is_image_file
from longtail.data.listfile import read_image_list
from longtail.errors import ConfigError, DataError
from longtail.tracking import write_json

SPLITS = ("test", "heldout", "train")


@dataclass
class Item:
    """One input: a file path (or a split position) and its label when known."""

    path: str
    label: int | None = None
    index: int | None = None  # position in a split of the run (split inputs)


def resolve_inputs(spec: str, classes: list[str], root: str | Path | None = None) -> tuple[str, list[Item]]:
    """``(kind, items)`` of INPUT; kind is ``"image"``, ``"folder"``, ``"list"`` or ``"split"``."""
    if spec.startswith("split:"):
        name = spec.split(":", 1)[1]
        if name not in SPLITS:
            raise ConfigError(f"INPUT {spec!r}: the split must be one of {', '.join('split:' + s for s in SPLITS)}")
        return "split", []
    path = Path(spec)
    if path.is_dir():
        files = sorted(
            str(Path(d) / f) for d, _, names in os.walk(path) for f in names if is_image_file(f)
        )
        if not files:
            raise DataError(f"folder {path} holds no image file ({', '.join(('.png', '.jpg', '...'))}); give another INPUT")
        return "folder", [Item(f) for f in files]
    if path.is_file():
        if is_image_file(path.name):
            return "image", [Item(str(path))]
        return "list", [Item(entry.path, entry.label) for entry in read_image_list(path, classes, root)]
    raise DataError(f"INPUT {spec} does not exist; give an image, a folder, a list file or split:test")


def file_transform(run: Any) -> Any:
    """The per-image evaluation transform of the run's splits (``EvalData``): ``pad-crop`` runs
    (tensor sets, small images) take the image at S×S (shorter side to S, centre crop when it has
    another size), the others resize the shorter side to S·256/224 and take the centre S×S."""
    from longtail.data.loaders import StreamTransform

    # every EvalData of the run has the same transform; train_eval always exists (a run trained with
    # eval.test=false has no test split loaded)
    mode = "pad-crop" if getattr(run.data.train_eval, "transform", "pad-crop") == "pad-crop" else "random-resized-crop"
    return StreamTransform(run.image_size, train=False, mean=run.mean, std=run.std, mode=mode, channels=run.channels)


def load_image(path: str, transform: Any) -> np.ndarray:
    """uint8 ``[C, S, S]`` of the image file ``path`` through ``transform`` (DataError if unreadable)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            image = image.convert(transform.pil_mode)
    except FileNotFoundError:
        raise DataError(f"no such file {path}") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"cannot decode image {path} ({error})") from None
    return transform(image, np.random.default_rng(0))


def normalise(images_u8: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """``(u8/255 − mean)/std`` in float32, as the engine's evaluation does."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return images_u8.float().div_(255.0).sub_(m).div_(s)


def image_batches(
    run: Any, items: list[Item], batch_size: int, on_skip: Callable[[Item, str], None]
) -> Iterator[tuple[list[Item], torch.Tensor]]:
    """``(items, x)`` batches of decodable files; undecodable ones go to ``on_skip(item, reason)``."""
    transform = file_transform(run)
    for start in range(0, len(items), batch_size):
        kept, arrays = [], []
        for item in items[start : start + batch_size]:
            try:
                arrays.append(load_image(item.path, transform))
                kept.append(item)
            except DataError as error:
                on_skip(item, str(error))
        if kept:
            yield kept, normalise(torch.from_numpy(np.stack(arrays)), run.mean, run.std)


def split_source(run: Any, name: str) -> Any:
    """The run's own split ``name`` (``EvalData``); a one-line ``ConfigError`` when the run has none."""
    source = {"test": run.data.test, "heldout": run.data.heldout, "train": run.data.train_eval}[name]
    if source is None and name == "test" and not run.config.eval.test:
        from longtail.engine.run import no_test_split

        raise ConfigError(no_test_split(run.run_dir, "give split:heldout, split:train or image files as INPUT"))
    if source is None or len(source) == 0:
        raise ConfigError(f"run {run.run_dir} has no {name} split; give another INPUT")
    return source


def split_batches(run: Any, name: str, batch_size: int) -> Iterator[tuple[list[Item], torch.Tensor]]:
    """``(items, x)`` of the run's own split, through the engine's evaluation loader."""
    source = split_source(run, name)
    paths = source.split.paths
    labels = source.labels.tolist()
    indices = torch.arange(len(source), dtype=torch.int64)
    position = 0
    for x, _ in source.batches(indices, batch_size):
        n = x.shape[0]
        items = [Item(paths[i] if paths is not None else f"{name}/{i}", labels[i], i) for i in range(position, position + n)]
        position += n
        yield items, x


def top_k(probabilities: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    k = min(k, probabilities.shape[1])
    values, indices = probabilities.topk(k, dim=1)
    return values, indices


@dataclass
class PredictResult:
    written: int
    skipped: list[dict[str, str]]
    out: Path
    meta_path: Path | None
    correct: int | None  # with labels: top-1 correct count over the labelled rows
    labelled: int


def predict(
    run: Any,
    decision: Any,
    spec: str,
    out: str | Path,
    top: int = 5,
    batch_size: int = 64,
    root: str | Path | None = None,
    progress: bool | None = None,
    warn: Callable[[str], None] | None = None,
) -> PredictResult:
    """Write top-``top`` predictions of every input of ``spec`` to ``out`` (``.csv`` or ``.jsonl``)."""
    from tqdm import tqdm

    out = Path(out)
    fmt = out.suffix.lower()
    if fmt not in (".csv", ".jsonl"):
        raise ConfigError(f"--out {out}: the file name must end in .csv or .jsonl")
    if top < 1:
        raise ConfigError(f"--top-k {top}: give a number >= 1")
    if run.info.kind == "text":
        raise ConfigError(f"run {run.run_dir} is a text model ({run.config.data.name}); predict reads images")
    classes = run.classes
    kind, items = resolve_inputs(spec, classes, root)
    skipped: list[dict[str, str]] = []
    say = warn or (lambda text: print(text, file=sys.stderr))

    def on_skip(item: Item, reason: str) -> None:
        skipped.append({"path": item.path, "error": reason})
        say(f"longtail: skipped {item.path}: {reason}")

    if kind == "split":
        name = spec.split(":", 1)[1]
        total = len(split_source(run, name))  # checked before any output is written
        batches = split_batches(run, name, batch_size)
    else:
        total = len(items)
        batches = image_batches(run, items, batch_size, on_skip)
    k = min(top, len(classes))
    meta = {
        "run": str(run.run_dir), "checkpoint": run.checkpoint.name, "epoch": run.epoch, "input": spec,
        "input_kind": kind, "num_inputs": total, "top_k": k, "classes": classes, **decision.metadata,
        "probabilities": "softmax of the final scores (after the post-hoc rule and the temperature); fp32",
    }  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".rows.tmp")
    written = correct = labelled = 0
    bar = tqdm(total=total, unit="img", file=sys.stderr, disable=(None if progress is None else not progress),
               desc="predict")  # fmt: skip
    final = out.with_name(out.name + ".tmp")
    try:  # an error or Ctrl-C mid-way leaves no *.rows.tmp / *.tmp behind and any earlier OUT untouched
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = None
            if fmt == ".csv":
                writer = csv.writer(handle)
                header = ["path", "label"] + [f"{w}{j}" for j in range(1, k + 1) for w in ("class", "prob")]
                writer.writerow(header)
            model = run.model
            with torch.no_grad():
                for batch_items, x in batches:
                    features, logits = model(x.to(run.accel.torch_device))
                    scores = decision.scores(features.float(), logits.float())
                    probs = torch.softmax(scores, dim=1).cpu()
                    values, indices = top_k(probs, k)
                    for item, vals, idx in zip(batch_items, values.tolist(), indices.tolist()):
                        label = classes[item.label] if item.label is not None else None
                        if item.label is not None:
                            labelled += 1
                            correct += int(idx[0] == item.label)
                        if writer is not None:
                            row: list[Any] = [item.path, "" if label is None else label]
                            for c, p in zip(idx, vals):
                                row += [classes[c], repr(p)]
                            writer.writerow(row)
                        else:
                            record = {"path": item.path, "label": label,
                                      "top": [{"class": classes[c], "index": c, "prob": p} for c, p in zip(idx, vals)]}
                            handle.write(json.dumps(record) + "\n")
                        written += 1
                    bar.update(len(batch_items))
                bar.update(max(0, total - bar.n))
        bar.close()
        meta.update(written=written, skipped=skipped, top1_accuracy=(correct / labelled if labelled else None))
        meta_path = None
        if fmt == ".csv":
            tmp.replace(out)
            meta_path = out.with_suffix(".meta.json")
            write_json(meta_path, meta)
        else:  # JSONL: the metadata line (with the counts and skipped files) first, then the rows
            with final.open("w", encoding="utf-8") as handle, tmp.open(encoding="utf-8") as rows:
                handle.write(json.dumps({"meta": meta}) + "\n")
                for line in rows:
                    handle.write(line)
            final.replace(out)
            tmp.unlink()
    except BaseException:
        bar.close()
        for partial in (tmp, final):
            partial.unlink(missing_ok=True)
        raise
    return PredictResult(written, skipped, out, meta_path, correct if labelled else None, labelled)
