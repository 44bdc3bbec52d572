import json

from longtail.tracking import MetricsLog, Progress, TensorBoardLog, format_epoch, write_json


def test_metrics_log_truncates_on_resume_and_skips_a_cut_line(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    for epoch in (1, 2, 3):
        log.append({"epoch": epoch, "train_loss": 1.0 / epoch})
    with open(log.path, "a") as handle:
        handle.write('{"epoch": 4, "train_lo')  # killed mid-write
    log.truncate_after(2)
    assert [r["epoch"] for r in log.read()] == [1, 2]


def test_json_is_strict(tmp_path):
    write_json(tmp_path / "r.json", {"a": float("nan"), "b": [float("inf"), 1.5]})
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": None, "b": [None, 1.5]}


def test_plain_progress_prints_one_line_per_epoch(capsys):
    progress = Progress("auto", epochs=2)  # stdout is not a terminal under pytest → plain lines
    assert progress.mode == "line"
    progress.start_epoch(0, 3)
    progress.step()
    progress.end_epoch({"epoch": 1, "lr": 0.1, "train_loss": 2.0, "train_acc": 0.5, "seconds": 1.25})
    out = capsys.readouterr().out
    assert out == format_epoch({"epoch": 1, "lr": 0.1, "train_loss": 2.0, "train_acc": 0.5, "seconds": 1.25}, 2) + "\n"
    assert out.startswith("epoch 1/2  lr 0.1  train_loss 2  train_acc 0.5")
    silent = Progress("line", epochs=2, enabled=False)  # ranks other than 0
    silent.end_epoch({"epoch": 1, "seconds": 0.0})
    assert capsys.readouterr().out == ""


def test_bar_progress(capsys):
    progress = Progress("bar", epochs=1)
    progress.start_epoch(0, 2)
    progress.step()
    progress.step()
    progress.end_epoch({"epoch": 1, "seconds": 0.5})
    assert "epoch 1/1" in capsys.readouterr().out


def test_tensorboard_events(tmp_path):
    board = TensorBoardLog(tmp_path / "events")
    board.log({"epoch": 1, "train_loss": 0.5, "sampler": "instance"}, 1)
    board.close()
    assert board.writer is None or list((tmp_path / "events").iterdir())
