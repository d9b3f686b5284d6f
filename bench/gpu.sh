#!/usr/bin/env bash
# One prepared run for a lent GPU machine (the `device` tool), under 10 minutes:
#   1. bench/loop_bench.py on the GPU: the real training loop beside the bare step, per layout;
#   2. the report's full experiment, `facesketch reproduce` (dense_ae, conv_ae, hybrid_ae and the
#      baselines, both directions, the report's schedules), and its tables.
# Everything lands in OUT: device.txt, loop_bench.md, reproduce/ (runs, report), tables.md, time.txt.
# A failed or overlong bench (BENCH_TIMEOUT) does not stop the experiment. Run again with the same OUT
# (on the same machine: a lent one keeps its files while it is warm), it resumes: the bench is kept
# and `reproduce` keeps finished runs and continues an interrupted one from its checkpoint. On an
# H200 the experiment's training took about 10 minutes one run at a time (bench/README.md); the
# runs now train JOBS at once (`reproduce --jobs`), sharing the GPU, which these small models
# leave idle between kernels. Not yet measured on a GPU at the time of writing.
#
#   bash bench/gpu.sh CUFS_DIR OUT
#   EPOCHS_SCALE=0.01 DEVICE=cpu bash bench/gpu.sh DIR OUT     # the same script, tiny, on a CPU
#
# Settings from the environment: PYTHON (python3), EPOCHS_SCALE (1), DEVICE (auto), MODELS (the
# report's three and the baselines), PRECISION and LAYOUT (auto: the experiment's), JOBS (6: runs trained at once),
# BENCH_MODELS (conv_ae,fsnet), BENCH_CANDIDATES (layout:precision pairs; all by default), BENCH_SECONDS (5),
# BENCH_PAIRS (40: 32 train x 8 views, whole batches of 16), BENCH_EPOCHS (3), BENCH_TIMEOUT (seconds, 180),
# BENCH_ROUNDS (1).
set -euo pipefail
DATA=${1:?usage: bash bench/gpu.sh CUFS_DIR OUT_DIR}
OUT=${2:?usage: bash bench/gpu.sh CUFS_DIR OUT_DIR}
DATA=$(realpath -m "$DATA"); OUT=$(realpath -m "$OUT")   # the script moves to the repository root below
PY=${PYTHON:-python3}
# a wrong data folder should stop the script now, not after minutes of bench
[ -d "$DATA" ] || { echo "bench/gpu.sh: $DATA: no such folder (expected the CUFS folder: photos/ and sketches/)" >&2; exit 2; }
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
start=$(date +%s)
"$PY" - > "$OUT/device.txt" <<'PY'
import os, sys
import torch
from facesketch import FacesketchError
from facesketch.autotune import check_request
try:   # as the data folder: a bad LAYOUT or PRECISION should stop the script now, not after the bench
    check_request(os.environ.get("LAYOUT", "auto"), os.environ.get("PRECISION", "auto"))
except FacesketchError as e:
    sys.exit(f"bench/gpu.sh (LAYOUT, PRECISION): {e}")
print("torch", torch.__version__)
print("cuda:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU run)")
PY
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv >> "$OUT/device.txt" 2>/dev/null || true
cat "$OUT/device.txt"
if [ -s "$OUT/loop_bench.md" ]; then
    echo "the bench is already in $OUT/loop_bench.md: going on with the experiment"
else
    timeout "${BENCH_TIMEOUT:-180}" "$PY" bench/loop_bench.py --device "${DEVICE:-auto}" \
        --models "${BENCH_MODELS:-conv_ae,fsnet}" --seconds "${BENCH_SECONDS:-5}" --synthetic-n "${BENCH_PAIRS:-40}" --epochs "${BENCH_EPOCHS:-3}" \
        --candidates "${BENCH_CANDIDATES:-}" --rounds "${BENCH_ROUNDS:-1}" --no-fresh --no-readme | tee "$OUT/loop_bench.md.part" \
        && mv "$OUT/loop_bench.md.part" "$OUT/loop_bench.md" \
        || echo "the bench failed or ran out of time (what it printed: $OUT/loop_bench.md.part); the experiment goes on"
fi
bench_done=$(date +%s)
"$PY" -m facesketch reproduce --data "$DATA" --out "$OUT/reproduce" --epochs-scale "${EPOCHS_SCALE:-1}" \
    --device "${DEVICE:-auto}" --precision "${PRECISION:-auto}" --layout "${LAYOUT:-auto}" --models "${MODELS:-dense_ae,conv_ae,hybrid_ae,pencil,grey,mean}" --jobs "${JOBS:-6}"
cp "$OUT/reproduce/report/report.md" "$OUT/tables.md"
end=$(date +%s)
echo "bench $((bench_done - start)) s, reproduce $((end - bench_done)) s, total $((end - start)) s" | tee "$OUT/time.txt"
