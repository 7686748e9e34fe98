#!/bin/bash
# The population model's whole-frame total regressor on a lent GPU machine (fifty-fifth session), as one job:
# render the training embryos many times over (random pose and zoom, optics drawn per frame; the renders
# scripts/zoo_renders.sh makes for tr2_* and cal_*, with new seeds), gather their clean frames into one folder
# (scripts/zoo_population.py --gather --gather-from), and train recipes/population_total_gpu.yaml at each input
# size of SIZES side by side on the one GPU within a time budget (scripts/gpu_train.py), the loader processes
# shared out between them. The best epoch of each (by total MAE on fresh simulated embryos, rendered for
# validation only) is copied to $OUT/<H>x<W>/ with its history; the weights are stored as fp16 (as the
# population model's tables file stores them).
#
# Run from the repository root with the training tables in $DATA (default .gpudata: epic/*.csv of the five
# training embryos, those with an annotation cliff cut there by `devolens lineage clean` (L4 after time 164,
# 20241107 L1 after 149: past it a render draws what is left of the table, an embryo without its AB lineage),
# and acetree/wormguides_nuclei.zip; the held-out embryo L3 is not there) and, where devolens' dependencies are
# missing, their wheels in .whl/:
#
#   OUT=runs/gpu_pop bash scripts/gpu_population_total.sh
#
# Knobs (environment): TOTAL (seconds from the start by which training ends, default 480), JOBS (render
# processes, default the CPUs), PASSES (renders of each real training embryo, default 8), SIMS (simulated
# embryos, default 48), VALSIMS (simulated validation embryos, default 2), EVERY (time points of the real
# embryos, default 1), SIZES (input sizes, default "128x192 256x384"), SEED0 (added to every render seed),
# BATCH (default the recipe's 64), CHECKS (a command run beside the renders, e.g. the GPU tests; its output in
# $OUT/checks.log).
set -euo pipefail
T0=$(date +%s)
say() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
OUT=${OUT:-runs/gpu_pop}
mkdir -p "$OUT"
PY=${PY:-python3}
if [ -d .whl ] && ! $PY -c "import albumentations, segmentation_models_pytorch" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD/src
else
  export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
fi
D=${DATA:-.gpudata}
W=${WORK:-/tmp/gpu_pop}
JOBS=${JOBS:-$(nproc)}
PASSES=${PASSES:-8}
SIMS=${SIMS:-48}
VALSIMS=${VALSIMS:-2}
EVERY=${EVERY:-1}
SEED0=${SEED0:-0}
SIZES=${SIZES:-128x192 256x384}
R=$W/render
rm -rf "$W"  # a rerun on a warm machine: nothing left over from the last one
mkdir -p "$R"
(nvidia-smi -L || true) | head -2
$PY -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
if [ -n "${CHECKS:-}" ]; then
  (bash -c "$CHECKS" > "$OUT/checks.log" 2>&1; echo "checks exit $?" >> "$OUT/checks.log") &
  CHECKS_PID=$!
fi
DL="$PY -c 'from devolens.cli import run; run()' render"

# ---- renders: each real training embryo PASSES times, the AceTree embryo 4 times, SIMS simulated embryos in
# chunks; VALSIMS more simulated embryos (their own seeds) for validation only
cmds=()
i=0
for t in CD20240930_JIM762_L4 CD20241009_JIM767_25_L1 CD20241009_JIM767_25_L5 CD20241010_JIM767_25_L2 CD20241107_JIM767_25_L1; do
  i=$((i+1))
  for p in $(seq 1 "$PASSES"); do
    cmds+=("$DL $D/epic/$t.csv --out $R/p${p}_$t --every $EVERY --pose random --vary frame --grey --seed $((SEED0+5000+100*i+p))")
  done
done
for p in 1 2 3 4; do
  cmds+=("$DL $D/acetree/wormguides_nuclei.zip --out $R/p${p}_acetree --every $((EVERY+1)) --pose random --vary frame --grey --seed $((SEED0+5700+p))")
done
chunk=$(( (SIMS + 15) / 16 ))
for c in $(seq 1 16); do
  n=$(( SIMS - (c-1)*chunk )); n=$(( n > chunk ? chunk : n ))
  [ "$n" -gt 0 ] && cmds+=("$DL --simulate $n --out $R/sim$c --every 2 --pose random --vary frame --grey --seed $((SEED0+5800+c))")
done
cmds+=("$DL --simulate $VALSIMS --out $W/valrender --every 2 --pose random --vary frame --grey --seed $((SEED0+5900))")
say "rendering: ${#cmds[@]} jobs on $JOBS processes"
printf '%s\n' "${cmds[@]}" | xargs -d '\n' -P "$JOBS" -I{} bash -c '{} > /dev/null'
$PY scripts/zoo_population.py --gather "$W/data" --gather-from "$R"/*
$PY scripts/zoo_population.py --gather "$W/val" --gather-from "$W/valrender"
say "renders gathered"
if [ -n "${CHECKS_PID:-}" ]; then wait "$CHECKS_PID" || true; say "checks: $(tail -1 "$OUT/checks.log")"; fi

# ---- training: every size side by side within what is left of TOTAL
n=$(echo $SIZES | wc -w)
WORKERS=$(( (JOBS - n) / n )); WORKERS=$(( WORKERS > 0 ? WORKERS : 1 ))
MINUTES=$($PY -c "print(max(0.0, (${TOTAL:-480} - ($(date +%s) - $T0)) / 60))")
say "training for $MINUTES minutes: $SIZES, $WORKERS loader processes each"
pids=()
for s in $SIZES; do
  h=${s%x*}; w=${s#*x}
  sed "s/^  size: \[128, 192\]/  size: [$h, $w]/" recipes/population_total_gpu.yaml > "$W/recipe_$s.yaml"
  grep -q "size: \[$h, $w\]" "$W/recipe_$s.yaml"
  $PY scripts/gpu_train.py "$W/recipe_$s.yaml" --data "$W/data" --val "$W/val" --out "$W/run_$s" \
    --minutes "$MINUTES" ${BATCH:+--batch-size "$BATCH"} --workers "$WORKERS" --device "${DEVICE:-auto}" \
    > "$W/train_$s.log" 2>&1 &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
for s in $SIZES; do
  echo "---- $s"; grep -v "^\s*$" "$W/train_$s.log" | tail -40
  mkdir -p "$OUT/$s"
  if [ -f "$W/run_$s/best.safetensors" ]; then  # fp16, as the tables file stores it
    $PY -c "
import sys
from safetensors.torch import load_file, save_file
save_file({k: v.half() for k, v in load_file(sys.argv[1]).items()}, sys.argv[2])" \
      "$W/run_$s/best.safetensors" "$OUT/$s/best16.safetensors"
    cp "$W/run_$s/best.json" "$W/run_$s/history.csv" "$OUT/$s/"
  fi
done
say "finished"
exit $status
