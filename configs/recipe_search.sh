#!/usr/bin/env bash
# Two arms of the recipe search for short CPU budgets (docs/TRAINING.md, "Recipe search"; issue
# 14): two masked runs side by side, one thread each, in the background, both with the cpu recipe
# and the same seed, each with its own extra flags. Both start from the shipped masked model
# unless an arm's flags give another --init (--init none: from scratch), and both validate every
# 250 iterations on 4 images, on the training noise and the unseen ones.
#
#   bash configs/recipe_search.sh NAME ITERATIONS "FLAGS_A" "FLAGS_B"
#
# e.g. bash configs/recipe_search.sh s1 1500 "--lr 2e-4" "--lr 5e-4"
#
# An arm's flags come last, so they override the common ones (--iterations, --size, --init,
# --val-every, ...); "" is the cpu recipe as it is. Give arms whose steps cost differently
# (another --size, --batch or --patch) iterations in proportion to their measured step rate, so
# that both take the same wall time. Runs go to runs/NAME-a and runs/NAME-b, logs to
# runs/NAME-a.log and runs/NAME-b.log. MDN (the mdn command), MDN_SEED and MDN_NICE (default -5)
# change the defaults, as in configs/cpu_campaign.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

usage='usage: bash configs/recipe_search.sh NAME ITERATIONS "FLAGS_A" "FLAGS_B"'
if [ $# -ne 4 ] || [ -z "$1" ] || [ -z "$2" ]; then
  echo "$usage" >&2
  exit 2
fi
name=$1
iterations=$2
mdn=${MDN:-.venv/bin/mdn}
seed=${MDN_SEED:-$(date +%s | tail -c 5)}  # one seed for both arms: the same crops, noise and masks
mkdir -p runs
for arm in a b; do
  if [ "$arm" = a ]; then flags=$3; else flags=$4; fi
  read -r -a extra <<< "$flags"  # split on blanks, without globbing
  cmd=("$mdn" train --preset masked --recipe cpu --size lite --init masked
       --out "runs/$name-$arm" --iterations "$iterations" --threads 1 --precision auto
       --val-every 250 --val-limit 4 --checkpoint-every 100 --workers 0 --seed "$seed" --no-progress
       ${extra[@]+"${extra[@]}"})
  nohup nice -n "${MDN_NICE:--5}" "${cmd[@]}" > "runs/$name-$arm.log" 2>&1 &
  echo "started $arm (seed $seed): ${cmd[*]}; log runs/$name-$arm.log"
done
