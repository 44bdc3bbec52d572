"""Using a trained run: load it in one call, build its decision (post-hoc rule, τ, temperature), predict
on image files, lists and splits, export a self-contained TorchScript (or ONNX) model.

- :func:`loading.load_trained_run` — config, data, model (fp32, eval mode) and cached split outputs;
- :func:`decision.build_decision` — the rule with its parameter (given, default, tuned on the held-out
  split, or chosen on another run's held-out split with ``tau_from``) and temperature scaling last;
- :func:`predict.predict` — top-k classes and probabilities per input, unreadable files skipped;
- :func:`export.export_model` — one model file plus a JSON sidecar.
"""
