#!/usr/bin/env bash
# The GPU checks, in one go (under 8 minutes on one GPU), for a machine with a CUDA device:
#   1. the test suite's GPU-marked tests (tests/test_gpu.py: placement, bf16-mixed terms
#      against float32, the closed-form L1/L2 gradient on the device);
#   2. trainer=gpu runs of digits_cnn, digits_simclr and ring_gan, in float32 and in
#      bf16-mixed, each capped in epochs and time;
#   3. scripts/benchmark.py --device cuda.
# Every figure goes to $OUT/device_check.md (OUT defaults to logs/device_check), for
# docs/benchmarks.md. Without a CUDA device it says so and exits 0.
#   scripts/device_check.sh            PYTHON=python3 scripts/device_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
OUT=${OUT:-logs/device_check}

if ! "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "device_check: no CUDA device here (torch.cuda.is_available() is False): nothing to check"
    exit 0
fi
mkdir -p "$OUT"
REPORT="$OUT/device_check.md"
QUIET=(trainer.enable_progress_bar=false callbacks.rich_progress_bar=null logger=tensorboard)
failed=0

{
    echo "# Device check, $(date -u '+%Y-%m-%d %H:%M UTC')"
    "$PYTHON" -c "import torch; print('-', torch.cuda.get_device_name(0) + ', torch', torch.__version__, ', CUDA', torch.version.cuda)"
} > "$REPORT"

echo "## GPU-marked tests" >> "$REPORT"
if timeout 150 "$PYTHON" -m pytest -q -m gpu tests/test_gpu.py > "$OUT/tests.txt" 2>&1; then
    tail -1 "$OUT/tests.txt" | sed 's/^/- /' >> "$REPORT"
else
    failed=1
    { echo "- FAILED:"; grep -E "^(FAILED|ERROR|E )" "$OUT/tests.txt" | head -20 | sed 's/^/    /'; } >> "$REPORT"
fi

echo "## trainer=gpu runs (epochs capped)" >> "$REPORT"
echo "| run | precision | closing summary |" >> "$REPORT"
echo "|---|---|---|" >> "$REPORT"
for run in "digits_cnn 10" "digits_simclr 3" "ring_gan 5"; do
    set -- $run
    for precision in 32-true bf16-mixed; do
        log="$OUT/$1_$precision.txt"
        if timeout 75 "$PYTHON" train.py "experiment=$1" trainer=gpu "trainer.precision=$precision" \
            "trainer.max_epochs=$2" "paths.log_dir=$OUT/runs" "${QUIET[@]}" > "$log" 2>&1; then
            summary=$(sed -n '/Done: /,/test metrics/p' "$log" | sed 's/^.*INFO\] - //' | tr '\n' ' ' | sed 's/|/\//g')
        else
            failed=1
            summary="FAILED (exit $?): $(grep -E '^error:|Error' "$log" | tail -1)"
        fi
        echo "| $1 | $precision | $summary |" >> "$REPORT"
    done
done

echo "## scripts/benchmark.py --device cuda" >> "$REPORT"
if timeout 150 "$PYTHON" scripts/benchmark.py --device cuda --rounds 3 > "$OUT/benchmark.txt" 2>&1; then
    { echo '```'; cat "$OUT/benchmark.txt"; echo '```'; } >> "$REPORT"
else
    failed=1
    { echo "- FAILED:"; tail -5 "$OUT/benchmark.txt" | sed 's/^/    /'; } >> "$REPORT"
fi

cat "$REPORT"
exit $failed
