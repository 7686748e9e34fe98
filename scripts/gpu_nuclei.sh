#!/bin/bash
# The nuclei network's GPU stage (recipes/nuclei_gpu.yaml), as one job for a lent GPU machine
# (nineteenth session): render the training embryos many times over (random pose, optics drawn
# per frame), cut them into crops at the working scale, train within a time budget, and copy the
# weights and the log to $OUT.
#
# Run from the repository root with the training tables in $DATA (default .gpudata: epic/*.csv of
# the five training embryos and acetree/wormguides_nuclei.zip; the held-out embryo L3 is not
# there) and, where devolens' dependencies are missing, their wheels in .whl/:
#
#   OUT=runs/gpu_out bash scripts/gpu_nuclei.sh
#
# Knobs (environment): TOTAL (seconds from the start by which training ends, default 500; the
# training gets what the renders and crops left of it), EPOCHS (default: as many whole passes
# over the crops as that holds; the shipped run 1 was made with EPOCHS=8), JOBS (render and crop
# processes, default the CPUs), WORKERS (data loader processes, default JOBS - 2), PASSES (renders
# of each real embryo, default 6), SIMS (simulated embryos, default 40), EVERY (time points of
# the real embryos, default 1), DEVICE (auto), BATCH (samples per step, default the recipe's 32: the
# nineteenth session's H200 ran batches of 32 at ~1170 crops/s, far below what it can do; the twenty-second's
# BATCH=64: loader 1900-2600 crops/s, device ~1510, yet ~740 crops/s within the epochs; the recipe's
# learning rate stays), SEED0 (added to every training render's seed, default 0: the nineteenth and twenty-second sessions' renders;
# another value draws new poses, optics and simulated embryos, e.g. for a further stage; the validation embryo keeps
# its seed), RECIPE (default recipes/nuclei_gpu.yaml; recipes/nuclei_gpu_distance.yaml adds
# a distance head: the twenty-second session's run, TOTAL=545 BATCH=64, shipped without the head through
# scripts/zoo_drop_head.py).
set -euo pipefail
OUT=${OUT:-runs/gpu_out}
mkdir -p "$OUT"
. "$(dirname "$0")/gpu_common.sh"  # T0, say, PY, the wheels, PYTHONPATH, DL, training_renders
D=${DATA:-.gpudata}
W=${WORK:-/tmp/gpu_nuclei}
JOBS=${JOBS:-$(nproc)}
WORKERS=${WORKERS:-$(( JOBS > 3 ? JOBS - 2 : 1 ))}
PASSES=${PASSES:-6}
SIMS=${SIMS:-40}
EVERY=${EVERY:-1}
SEED0=${SEED0:-0}
R=$W/render
rm -rf "$W/render" "$W/data" "$W/val" "$W/run"  # a rerun on a warm machine: nothing left over from the last one
mkdir -p "$R"

# ---- renders: each real training embryo PASSES times, the AceTree embryo 3 times, SIMS simulated
# embryos in chunks; one more simulated embryo (its own seed) for validation only
cmds=()
training_renders $((SEED0+1000)) 3
cmds+=("$DL --simulate 1 --out $R/gval_sim --every 2 --pose random --vary frame --grey --seed 1900")
say "rendering: ${#cmds[@]} jobs on $JOBS processes"
printf '%s\n' "${cmds[@]}" | xargs -d '\n' -P "$JOBS" -I{} bash -c '{} > /dev/null'
say "rendered $(cat $R/*/frames.csv | grep -vc '^file')"

# ---- crops at the working scale (0.5), 256 px around the embryo
$PY scripts/zoo_data.py nuclei $W/data $(ls -d $R/g* | grep -v gval_sim) --scale 0.5 --crop 256 --workers "$JOBS" --seed 19
$PY scripts/zoo_data.py nuclei $W/val $R/gval_sim --scale 0.5 --crop 256 --seed 19
say "crops ready"

# ---- training within what is left of TOTAL
# (no floor: with too little left gpu_train.py says so instead of overrunning TOTAL)
MINUTES=$($PY -c "print(max(0.0, (${TOTAL:-500} - ($(date +%s) - $T0)) / 60))")
say "training for $MINUTES minutes"
$PY scripts/gpu_train.py "${RECIPE:-recipes/nuclei_gpu.yaml}" --data $W/data --val $W/val --out $W/run \
  --minutes "$MINUTES" ${EPOCHS:+--epochs "$EPOCHS"} ${BATCH:+--batch-size "$BATCH"} --workers "$WORKERS" \
  --device "${DEVICE:-auto}" --copy-to "$OUT"
say "finished"
