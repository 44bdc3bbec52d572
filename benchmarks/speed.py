"""Training-speed benchmark: longtail's default pipeline vs the straightforward reference pipeline.

The same command as ``longtail bench speed`` (see ``src/longtail/bench/``)::

    python benchmarks/speed.py                       # both shapes, (b) = the trainer's runtime defaults
    python benchmarks/speed.py --precision bf16 --ablation --profile --json /tmp/speed.json

The last line printed is ``ratio: X.XX`` — (b) ÷ (a) training images/s.
"""

from __future__ import annotations

import sys

from longtail.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "speed", *sys.argv[1:]]))
