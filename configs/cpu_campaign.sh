#!/usr/bin/env bash
# One stage of the CPU training campaign (docs/TRAINING.md, "The CPU campaign"): fine-tune the
# shipped masked and baseline weights side by side with the cpu recipe, one thread each, for
# ITERATIONS iterations, in the background. The masked run starts from the shipped masked model
# (or, with --from-baseline, from the shipped baseline, as the campaign's first stage did);
# the baseline run trains on for the same iterations, so both keep equal budgets.
#
#   bash configs/cpu_campaign.sh NAME ITERATIONS [--from-baseline]
#
# MDN_MASKED_OPTIONS adds options to the masked run only (e.g. "--dense-final 0", as from c4 on).
# Runs go to runs/NAME-masked and runs/NAME-baseline, logs to runs/NAME-*.log. Plan ITERATIONS
# from the measured rate (about 1.4-2.5 s per iteration per run on a 2-core machine, depending on
# what else runs) so that the cosine tail ends before the session does: the weights that are
# published must be the end of a schedule. To change ITERATIONS while the runs are still in their
# flat part: stop them (kill -TERM), then start them again with --resume --iterations N (the
# schedule is re-planned from N). Publish both when they end (docs/TRAINING.md).
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: bash configs/cpu_campaign.sh NAME ITERATIONS [--from-baseline]"
name=${1:?$usage}
iterations=${2:?$usage}
masked_init=masked
if [ "${3:-}" = "--from-baseline" ]; then
  masked_init=baseline
elif [ -n "${3:-}" ]; then
  echo "$usage" >&2
  exit 2
fi
mdn=${MDN:-.venv/bin/mdn}
seed=${MDN_SEED:-$(date +%s | tail -c 5)}  # a new seed per stage: new crops, noise and masks
mkdir -p runs
for preset in masked baseline; do
  init=baseline
  extra=()
  if [ "$preset" = masked ]; then
    init=$masked_init
    read -r -a extra <<< "${MDN_MASKED_OPTIONS:-}"
  fi
  nohup nice -n "${MDN_NICE:--5}" "$mdn" train --preset "$preset" --recipe cpu --size lite \
    --init "$init" --out "runs/$name-$preset" --iterations "$iterations" --threads 1 \
    --precision auto --val-every 500 --val-limit 4 --checkpoint-every 100 --workers 0 \
    --seed "$seed" --no-progress ${extra[@]+"${extra[@]}"} > "runs/$name-$preset.log" 2>&1 &
  echo "started $preset (init $init, seed $seed): runs/$name-$preset, log runs/$name-$preset.log"
done
