# Shared by the lent GPU machine's jobs (scripts/gpu_nuclei.sh, scripts/gpu_population_total.sh); sourced, not run.
# Sets T0, say() (messages stamped with the seconds since T0), fail() (an error, exit 2), TRAINING_EMBRYOS,
# PY (default python3), installs the wheels of
# devolens' dependencies the machine lacks (.whl/, into /tmp/site) where they are missing, puts src/ on PYTHONPATH,
# and says which GPU and PyTorch run. training_renders fills the array cmds with the render commands of the
# training embryos.
T0=$(date +%s)
say() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
fail() { echo "error: $*" >&2; exit 2; }
# the real training embryos (EPIC tables in $D/epic); the held-out CD20241010_JIM767_25_L3 is not one of them
TRAINING_EMBRYOS="CD20240930_JIM762_L4 CD20241009_JIM767_25_L1 CD20241009_JIM767_25_L5 CD20241010_JIM767_25_L2 \
CD20241107_JIM767_25_L1"
[[ ${SEED0:-0} =~ ^[0-9]+$ ]] ||
  fail "SEED0 must be a whole number, 0 or more (a negative one can draw the held-out simulated embryo, seed 999)"
PY=${PY:-python3}
if [ -d .whl ] && ! $PY -c "import albumentations, segmentation_models_pytorch" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD/src
else
  export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
fi
(nvidia-smi -L 2>/dev/null || echo "no nvidia-smi") | head -2
$PY -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__,
      'cuda', torch.cuda.is_available())"
DL="$PY -c 'from devolens.cli import run; run()' render"

# training_renders BASE ACETREE_PASSES: append to cmds the renders of the training embryos into $R (random pose,
# optics drawn per frame, grey): each of the five real EPIC embryos in $D/epic PASSES times (every EVERY-th time
# point, seeds BASE+100*i+p), the AceTree embryo ACETREE_PASSES times (every EVERY+1-th, seeds BASE+700+p), and SIMS
# simulated embryos in 16 chunks (every 2nd, seeds BASE+800+c). The held-out embryos (CD20241010_JIM767_25_L3,
# simulated seed 999) are not among them.
training_renders() {
  local base=$1 i=0 t p c n chunk
  for t in $TRAINING_EMBRYOS; do
    i=$((i+1))
    for p in $(seq 1 "$PASSES"); do
      cmds+=("$DL $D/epic/$t.csv --out $R/g${p}_$t --every $EVERY --pose random --vary frame --grey \
--seed $((base+100*i+p))")
    done
  done
  for p in $(seq 1 "$2"); do
    cmds+=("$DL $D/acetree/wormguides_nuclei.zip --out $R/g${p}_acetree --every $((EVERY+1)) --pose random \
--vary frame --grey --seed $((base+700+p))")
  done
  chunk=$(( (SIMS + 15) / 16 ))
  for c in $(seq 1 16); do
    n=$(( SIMS - (c-1)*chunk )); n=$(( n > chunk ? chunk : n ))
    if [ "$n" -gt 0 ]; then
      cmds+=("$DL --simulate $n --out $R/gsim$c --every 2 --pose random --vary frame --grey --seed $((base+800+c))")
    fi
  done
}
