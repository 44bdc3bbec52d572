"""Reproducing the papers' tables: the rows (``tables``), the papers' numbers (``paper_numbers``) and
the runner behind ``longtail reproduce`` (``runner``)."""
