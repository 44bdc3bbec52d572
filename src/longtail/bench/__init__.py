"""Benchmarks that ship with the package: ``longtail bench speed`` (:mod:`longtail.bench.speed`).

The baseline the speed benchmark compares against — the straightforward per-image pipeline of the
public LDAM-DRW reference code — lives in :mod:`longtail.bench.reference`.
"""
