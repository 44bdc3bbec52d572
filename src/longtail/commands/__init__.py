"""Sub-commands of the ``longtail`` command; each module defines ``register(subparsers)``."""
