#!/usr/bin/env bash
# The main job on a fresh machine: set up, then train ERM, LDAM-DRW and CDT on long-tailed
# Fashion-MNIST (rho=100, N_max=2000, reversed class order: configs/demo/) and print their balanced and
# many/medium/few-shot accuracy side by side.
#   bash demo.sh                 # everything: minutes of training on 2 CPU cores (README, "Two commands"), plus set-up
#   DEMO_EPOCHS=2 bash demo.sh   # a quick smoke run of the same pipeline
# Re-running continues where it stopped: finished runs are kept, interrupted ones resume exactly.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && command -v apt-get >/dev/null; then
    echo "demo: installing Debian's dataset-fashion-mnist"
    (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null)
fi
if [ ! -x .venv/bin/longtail ]; then
    echo "demo: creating .venv (torch 2.13.0 CPU + longtail)"
    python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q torch==2.13.0
    .venv/bin/python -m pip install -q -e ".[analysis,tensorboard]"
fi
LONGTAIL=.venv/bin/longtail
OUT=${DEMO_OUT:-runs/demo}
overrides=()
if [ -n "${DEMO_EPOCHS:-}" ]; then overrides+=("train.epochs=${DEMO_EPOCHS}"); fi

for method in erm ldam-drw cdt; do
    dir="$OUT/$method"
    if [ -f "$dir/results.json" ]; then
        echo "demo: $method already trained ($dir)"
    elif [ -d "$dir/checkpoints" ]; then
        echo "demo: resuming $method"
        "$LONGTAIL" train --resume "$dir"
    else
        echo "demo: training $method -> $dir"
        "$LONGTAIL" train "configs/demo/$method.yaml" "${overrides[@]}" --out "$dir" --overwrite
    fi
done
"$LONGTAIL" compare "$OUT/erm" "$OUT/ldam-drw" "$OUT/cdt"
