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
# training embryos and acetree/wormguides_nuclei.zip; the held-out embryo L3 is not there) and, where devolens'
# dependencies are missing, their wheels in .whl/. The script cuts each table at its annotation cliff first
# (`devolens lineage clean`: L4 after time 164, 20241107 L1 after 149; past a cliff a render draws what is left of
# the table, an embryo without its AB lineage). The knobs and the tables are checked before any render (exit 2):
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
OUT=${OUT:-runs/gpu_pop}
mkdir -p "$OUT"
. "$(dirname "$0")/gpu_common.sh"  # T0, say, PY, the wheels, PYTHONPATH, DL, training_renders
D=${DATA:-.gpudata}
W=${WORK:-/tmp/gpu_pop}
JOBS=${JOBS:-$(nproc)}
PASSES=${PASSES:-8}
SIMS=${SIMS:-48}
VALSIMS=${VALSIMS:-2}
EVERY=${EVERY:-1}
SEED0=${SEED0:-0}
SIZES=${SIZES:-128x192 256x384}
TOTAL=${TOTAL:-480}
# ---- the knobs and the tables, before any render
[ -n "${SIZES// /}" ] || fail "SIZES names no input size (e.g. SIZES=\"128x192\")"
for s in $SIZES; do [[ $s =~ ^[0-9]+x[0-9]+$ ]] || fail "SIZES: '$s' is not HxW in pixels (e.g. 128x192)"; done
[[ $TOTAL =~ ^[0-9]+$ ]] && [ "$TOTAL" -ge 120 ] ||
  fail "TOTAL must be whole seconds, 120 or more (the renders come first), got '$TOTAL'"
for k in JOBS PASSES SIMS VALSIMS EVERY; do
  [[ ${!k} =~ ^[0-9]+$ ]] || fail "$k must be a whole number, got '${!k}'"
done
[ "$VALSIMS" -ge 1 ] && [ "$EVERY" -ge 1 ] && [ "$JOBS" -ge 1 ] || fail "VALSIMS, EVERY and JOBS must be 1 or more"
for t in $TRAINING_EMBRYOS; do
  [ -f "$D/epic/$t.csv" ] ||
    fail "no $D/epic/$t.csv (DATA holds epic/ with the five training tables and acetree/wormguides_nuclei.zip)"
done
[ -f "$D/acetree/wormguides_nuclei.zip" ] || fail "no $D/acetree/wormguides_nuclei.zip"
R=$W/render
# a rerun on a warm machine: nothing left over from the last one (this job's own folders only)
rm -rf "$R" "$W/tables" "$W/valrender" "$W/data" "$W/val" "$W"/run_* "$W"/recipe_* "$W"/train_*
for s in $SIZES; do rm -rf "${OUT:?}/$s"; done  # no weights of an earlier run left to look like this one's
mkdir -p "$R" "$W/tables/epic" "$W/tables/acetree"
# the tables cut at their annotation cliffs (past one a render draws what is left of the table, e.g. an embryo
# without its AB lineage): `devolens lineage clean`, which writes a table without a cliff whole
pids=()
for t in $TRAINING_EMBRYOS; do
  $PY -c 'from devolens.cli import run; run()' lineage clean "$D/epic/$t.csv" --out "$W/tables/epic/$t.csv" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "devolens lineage clean failed on a table of $D/epic (above)"; done
cp "$D/acetree/wormguides_nuclei.zip" "$W/tables/acetree/"
D=$W/tables
if [ -n "${CHECKS:-}" ]; then
  (bash -c "$CHECKS" > "$OUT/checks.log" 2>&1; echo "checks exit $?" >> "$OUT/checks.log") &
  CHECKS_PID=$!
fi

# ---- renders: each real training embryo PASSES times, the AceTree embryo 4 times, SIMS simulated embryos in
# chunks; VALSIMS more simulated embryos (their own seeds) for validation only
cmds=()
training_renders $((SEED0+5000)) 4
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
