#!/bin/bash
# Everything in the zoo that is derived from the nuclei network, made again in one command: the int8
# ranges, the reference diameter, both size models (diameter auto) and the population model's
# calibration and clock, in that order (each step reads what the one before wrote), in a staged copy of
# the zoo; the package's zoo is only replaced with SHIP=1, after a look at the differences.
#
#   bash scripts/zoo_refresh.sh [WEIGHTS]
#
# WEIGHTS: a training run's best.safetensors (its .json beside it), e.g. the GPU stage's
# (scripts/gpu_nuclei.sh); shipped into the staged nuclei folder first (scripts/zoo_ship.py --update).
# Without it the staged network is the shipped one, and the run checks that the shipped parts are
# reproduced by these commands (twenty-first session: all of them to the bit; benchmarks/RESULTS.md,
# nuclei, "Reproducing the derived parts").
#
# Card figures that no step measures again (the held-out and robustness figures without EVAL=1) are
# carried over from the package's cards for the same network, and listed, not carried, for new weights
# (scripts/zoo_carry.py; zoo_ship.py --update drops the metrics measured on the previous weights): re-measure
# those with the command in their "how".
#
# Needs the renders of scripts/zoo_renders.sh (calib_L2, calib_sim, cal_*, and for EVAL val_L3, val_sim;
# in RENDERS), the shared lineage tables (DEVOLENS_DATA, default ../shared/data) and the onnx extra (step 2b,
# pip install -e ".[onnx]"). About 13 minutes on
# 2 cores without EVAL.
#
# Environment: STAGE (default runs/refresh/zoo; made anew from the package's zoo unless KEEP_STAGE=1),
# WORK (runs/refresh/work), RENDERS (runs/zoo/render), WORKERS (render processes, default 2),
# SIZE_N (samples of each of the two embryo renders of the size models, default 1500 as shipped),
# EVAL=1 (also the held-out figures that the steps' sections hold: benchmarks/eval_zoo.py nuclei in int8,
# at zooms 0.5, 1 and 2 with and without the size model, in bf16 for new weights, and population; and the
# cards' robustness figures, benchmarks/eval_robustness.py through scripts/zoo_robustness.py; about 8
# minutes more),
# SHIP=1 (copy the staged nuclei and population folders into src/devolens/models/zoo at the end; then
# run the tests and look at `git diff`).
set -euo pipefail
T0=$(date +%s)
say() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
run() { say "$*"; "$@"; }
WEIGHTS=${1:-}
if [ -n "$WEIGHTS" ]; then
  if [ ! -f "$WEIGHTS" ] || [ ! -f "${WEIGHTS%.safetensors}.json" ]; then
    echo "error: $WEIGHTS: a run's weights with the .json beside them (devolens train / scripts/gpu_train.py)" >&2
    exit 2
  fi
  WEIGHTS=$(realpath "$WEIGHTS")  # before the cd below
fi
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STAGE=${STAGE:-runs/refresh/zoo}
WORK=${WORK:-runs/refresh/work}
R=${RENDERS:-runs/zoo/render}
WORKERS=${WORKERS:-2}
SIZE_N=${SIZE_N:-1500}
EVAL=${EVAL:-0}

need=("$R/calib_L2" "$R/calib_sim")
[ "$EVAL" = 1 ] && need+=("$R/val_L3" "$R/val_sim")
for d in "${need[@]}"; do
  [ -d "$d" ] || { echo "error: $d missing: make the renders first (bash scripts/zoo_renders.sh)" >&2; exit 2; }
done
CAL=("$R"/cal_*)
[ -d "${CAL[0]}" ] || { echo "error: no $R/cal_* renders: bash scripts/zoo_renders.sh" >&2; exit 2; }
if [ "${KEEP_STAGE:-0}" != 1 ]; then
  rm -rf "$STAGE"
  mkdir -p "$(dirname "$STAGE")"
  cp -r src/devolens/models/zoo "$STAGE"
  find "$STAGE" -name "__pycache__" -prune -exec rm -rf {} +
fi
mkdir -p "$WORK"

# 1. the weights
if [ -n "$WEIGHTS" ]; then
  run $PY scripts/zoo_ship.py nuclei "$WEIGHTS" --to "$STAGE/nuclei" --update
fi
# 2. the int8 network's activation ranges (from the float network, on training renders)
run $PY scripts/zoo_int8.py nuclei --zoo "$STAGE" --renders "$R/calib_L2" "$R/calib_sim" --frames 48
# 2b. onnxruntime's int8 graph and the float encoder's graph (--backend onnx), from the same frames
run $PY scripts/zoo_onnx.py nuclei --zoo "$STAGE" --renders "$R/calib_L2" "$R/calib_sim" --frames 48
# 3. the reference diameter (--diameter D; measured in fp32) and the range the size check warns outside of
run $PY scripts/zoo_diameter.py nuclei --zoo "$STAGE" --renders "$R/calib_L2" "$R/calib_sim"
# 4. both size models: one render per sample set, featurized unflattened (first model) and flattened with
#    a 120 px disc (backdrop reader); the held-out sets only for the card's figures
S0=$WORK/size; S1=$WORK/size120
size_render() {  # name, then render options
  local name=$1; shift
  run $PY scripts/zoo_sizemodel.py render --zoo "$STAGE" --workers "$WORKERS" --flatten 0 120 \
    --out "$S0/$name.npz" "$S1/$name.npz" "$@"
}
size_render train --n "$SIZE_N" --seed 1 --sims 8
size_render train2 --n "$SIZE_N" --seed 11 --sims 8
size_render wells --wells --n 400 --seed 3
size_render heldout --heldout --n 300 --seed 2
size_render wells_heldout --wells --n 100 --seed 4
size_render crowd --crowd 1 --n 500 --seed 21 --sims 8   # fields of several embryos: a head of their own
size_render crowd_heldout --crowd 1 --heldout --n 120 --seed 22
# (the keep band's lower edge 0.75: chosen on development renders by benchmarks/choose_keep_band.py, 37th session)
run $PY scripts/zoo_sizemodel.py fit "$S0/train.npz" "$S0/train2.npz" "$S0/wells.npz" "$S0/crowd.npz" --crowd-head \
  --keep-from 0.75 --heldout "$S0/heldout.npz" "$S0/wells_heldout.npz" "$S0/crowd_heldout.npz" --to "$STAGE/nuclei"
run $PY scripts/zoo_sizemodel.py fit "$S1/train.npz" "$S1/train2.npz" "$S1/wells.npz" \
  --heldout "$S1/heldout.npz" "$S1/wells_heldout.npz" --to "$STAGE/nuclei" --role backdrop --gate 0.05 0.15
# 5. the population model: the calibration of the nuclei counts (the whole-frame regressor kept; its blend weight
#    too: with a new calibration choose it again on development renders, benchmarks/choose_total_weight.py)
run $PY scripts/zoo_population.py --out "$WORK/pop_tables.safetensors" --zoo "$STAGE" \
  --total-from-zoo "$STAGE/population" --renders "${CAL[@]}"
run $PY scripts/zoo_ship.py population "$WORK/pop_tables.safetensors" --to "$STAGE/population" --update
# 6. the developmental clock, written into the population weights again (the tables copied above lack it)
run $PY scripts/zoo_clock.py --to "$STAGE/population"

if [ "$EVAL" = 1 ]; then  # held-out renders: embryo CD20241010_JIM767_25_L3 and simulated seed 999
  VAL=(--val "$R/val_L3" "$R/val_sim")
  E=$WORK/eval
  mkdir -p "$E"
  ev() { run $PY benchmarks/eval_zoo.py "$@" --zoo "$STAGE" "${VAL[@]}"; }
  ev nuclei --precision int8 --json "$E/nuclei_int8.json"
  run $PY scripts/zoo_int8.py nuclei --zoo "$STAGE" --metrics-only --metrics "$E/nuclei_int8.json"
  ev nuclei --diameter auto --backend onnx --json "$E/nuclei_onnx.json"
  run $PY scripts/zoo_onnx.py nuclei --zoo "$STAGE" --metrics-only --metrics "$E/nuclei_onnx.json"
  for z in 0.5 2.0; do
    ev nuclei --zoom "$z" --json "$E/nuclei_none_$z.json"
  done
  for z in 0.5 1.0 2.0; do
    ev nuclei --diameter auto --zoom "$z" --json "$E/nuclei_auto_$z.json"
  done
  if [ -n "$WEIGHTS" ]; then  # the float network's own figures (the card's metrics; the next step may read them)
    ev nuclei --precision bf16 --json "$E/nuclei_bf16.json"
    run $PY scripts/zoo_ship.py nuclei "$WEIGHTS" --to "$STAGE/nuclei" --update --metrics "$E/nuclei_bf16.json"
  fi
  run $PY scripts/zoo_sizemodel.py card --eval "$E" --to "$STAGE/nuclei"
  ev population --json "$E/population.json"
  run $PY scripts/zoo_ship.py population "$WORK/pop_tables.safetensors" --to "$STAGE/population" --update \
    --metrics "$E/population.json"
  run $PY scripts/zoo_clock.py --to "$STAGE/population" --metrics "$E/population.json"
  # robustness figures the cards hold (hot pixels, a bright backdrop; the population's acquisition changes)
  rb() { run $PY benchmarks/eval_robustness.py --zoo "$STAGE" "${VAL[@]}" "$@"; }
  mkdir -p "$E/robust"
  rb --only "as rendered" bright hot --json "$E/robust/nuclei.json"
  rb --only "as rendered" bright --diameter none --json "$E/robust/nuclei_none.json"
  rb --only "as rendered" hot --outliers 0 --json "$E/robust/nuclei_outliers0.json"
  rb --model population --json "$E/robust/population.json"
  run $PY scripts/zoo_robustness.py --zoo "$STAGE" --eval "$E/robust"
fi

# 7. what no step measured again: carried over for the same network, listed for new weights
if [ -n "$WEIGHTS" ]; then
  run $PY scripts/zoo_carry.py src/devolens/models/zoo "$STAGE" --list-only
else
  run $PY scripts/zoo_carry.py src/devolens/models/zoo "$STAGE"
fi
say "staged: $STAGE; what differs from the package's zoo:"
$PY scripts/zoo_compare.py src/devolens/models/zoo "$STAGE" --ignore-text || true
if [ "${SHIP:-0}" = 1 ]; then
  for m in nuclei population; do
    rm -rf "src/devolens/models/zoo/$m"
    cp -r "$STAGE/$m" "src/devolens/models/zoo/$m"
  done
  say "shipped nuclei and population into src/devolens/models/zoo: run make test, then look at git diff"
fi
