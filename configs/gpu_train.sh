#!/usr/bin/env bash
# Train the masked and the baseline preset side by side on one CUDA GPU for a fixed wall time,
# resuming where the previous call stopped. Written for the device tool's calls of at most ten
# minutes on a lent machine; docs/TRAINING.md ("On a lent GPU") gives the whole procedure.
#
#   bash configs/gpu_train.sh SECONDS ITERATIONS [SIZE]
#
# Both runs get the same wall time and the same schedule (decay at 70 % and 90 % of
# ITERATIONS), so the comparison stays fair. A run stopped by the time limit writes its
# checkpoint and exports its EMA weights; the next call continues it with --resume.
# Data: .gpu_data/train and .gpu_data/val (override with MDN_TRAIN_DATA / MDN_VAL_DATA).
# Output: runs/gpu-<preset>/ (kept on a warm machine between calls); when $OUT is set, the
# two run folders are packed into $OUT/gpu_runs.tar, split into parts under 16 MB
# (join them with `cat gpu_runs.tar.part-* > gpu_runs.tar`).
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: bash configs/gpu_train.sh SECONDS ITERATIONS [SIZE]"
seconds=${1:?$usage}
iterations=${2:?$usage}
size=${3:-paper}
python=${PYTHON:-python3}
data=${MDN_TRAIN_DATA:-.gpu_data/train}
val=${MDN_VAL_DATA:-.gpu_data/val}
batch=${MDN_BATCH:-64}
lr=${MDN_LR:-2e-4}
workers=${MDN_WORKERS:-6}
threads=${MDN_THREADS:-4}
checkpoint_every=${MDN_CHECKPOINT_EVERY:-500}
val_every=${MDN_VAL_EVERY:-1000}
first=$((iterations * 7 / 10))
second=$((iterations * 9 / 10))
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

pids=()
for preset in masked baseline; do
  out="runs/gpu-$preset"
  mkdir -p "$out"
  timeout --signal=TERM --kill-after=120 "$seconds" \
    "$python" -m model_core.train --preset "$preset" --size "$size" --out "$out" \
    --data "$data" --val "$val" --val-limit 6 --iterations "$iterations" \
    --milestones "$first" "$second" --batch "$batch" --lr "$lr" \
    --workers "$workers" --threads "$threads" \
    --checkpoint-every "$checkpoint_every" --val-every "$val_every" --resume --no-progress \
    >>"$out/train.log" 2>&1 &
  pids+=("$!")
done
failed=0
for pid in "${pids[@]}"; do
  # 124: stopped by the time limit, which is how a call normally ends.
  wait "$pid" || { rc=$?; [ "$rc" -eq 124 ] || failed=$rc; }
done

for preset in masked baseline; do
  echo "== $preset"
  tail -n 3 "runs/gpu-$preset/log.csv" 2>/dev/null || true
  tail -n 3 "runs/gpu-$preset/train.log"
done
if [ -n "${OUT:-}" ]; then
  tar -cf - runs/gpu-masked runs/gpu-baseline | split -b 15M - "$OUT/gpu_runs.tar.part-"
  ls -l "$OUT"
fi
exit "$failed"
