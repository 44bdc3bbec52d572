"""Reproducing the papers' tables: each table declared once with its rows, configs and published numbers
(``tables``) and the runner behind ``longtail reproduce`` (``runner``)."""
