#!/usr/bin/env bash
# One prepared session on a GPU machine (PyTorch with CUDA, no network), about 10 minutes: the device tests,
# benchmarks/gpu.py (time to 99.2% with the default CUDA graph and with eager steps, the tutorial and best recipes,
# inference, utilisation), then benchmarks/gpu_accuracy.py's architecture question in the time left: best's deep
# net (An et al.'s M3) for 18 and 48 epochs against the wide net it replaced.
# Everything it measures lands in $OUT.
#
# Prepare, in the checkout, once (the MNIST files travel gzipped in an ignored folder):
#   mkdir -p .mnist && for f in ~/.cache/digits/*-ubyte; do gzip -c "$f" > .mnist/$(basename "$f").gz; done
#   grep -qx '/.mnist/' .git/info/exclude || echo /.mnist/ >> .git/info/exclude
# Run there:  bash benchmarks/gpu_session.sh      (with .mnist carried along)
#             bash benchmarks/gpu_session.sh suite   (instead: the whole test suite on the GPU machine, browser
#             tests left out by marker (no Chromium there); without FastAPI the serve tests skip, saying why)
set -u
OUT=${OUT:-/tmp/gpu-session}
DATA=${DATA:-.mnist}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 DIGITS_DATA_DIR="$(realpath -m "$DATA")"
nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/gpu.txt" 2>&1
python -c "import torch; print(torch.__version__, torch.cuda.get_device_name())" >> "$OUT/gpu.txt" 2>&1
if [ "${1:-}" = suite ]; then
    timeout 540 python -m pytest -q -p no:cacheprovider -m "not browser" -rs > "$OUT/pytest-suite.txt" 2>&1
    tail -n 40 "$OUT/pytest-suite.txt"
    exit 0
fi
timeout 120 python -m pytest -q -p no:cacheprovider tests/test_step.py tests/test_device.py tests/test_optim.py \
    tests/test_torch_compat.py > "$OUT/pytest.txt" 2>&1
timeout 300 python benchmarks/gpu.py --data-dir "$DATA" --seeds 5 > "$OUT/gpu_benchmark.txt" 2>&1
cp docs/results/gpu.json "$OUT/" 2>/dev/null
timeout 170 python benchmarks/gpu_accuracy.py --question model --seeds 3 --budget 100 --data-dir "$DATA" \
    --out "$OUT/accuracy.jsonl" > "$OUT/accuracy.txt" 2>&1
tail -n 30 "$OUT"/*.txt
