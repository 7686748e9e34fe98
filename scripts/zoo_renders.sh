#!/bin/bash
# Renders for the zoo's nuclei and population models (written under runs/, git-ignored).
# Training: 5 EPIC embryos, the AceTree embryo and simulated embryos, twice with different
# poses/optics; held out: EPIC embryo CD20241010_JIM767_25_L3 and simulated seed 999.
# Usage: bash scripts/zoo_renders.sh [DATA_DIR]   (default $DEVOLENS_DATA or ../shared/data)
set -e
cd "$(dirname "$0")/.."
R=runs/zoo/render
D=${1:-${DEVOLENS_DATA:-../shared/data}}
DL=".venv/bin/devolens render"
i=0
for t in CD20240930_JIM762_L4 CD20241009_JIM767_25_L1 CD20241009_JIM767_25_L5 CD20241010_JIM767_25_L2 CD20241107_JIM767_25_L1; do
  i=$((i+1))
  [ -f $R/tr_$t/frames.csv ] || $DL $D/epic/$t.csv --out $R/tr_$t --every 2 --pose random --vary frame --grey --seed $((10+i))
  [ -f $R/tr2_$t/frames.csv ] || $DL $D/epic/$t.csv --out $R/tr2_$t --every 1 --pose random --vary frame --grey --seed $((30+i)) --workers 2
done
[ -f $R/tr_acetree/frames.csv ] || $DL $D/acetree/wormguides_nuclei.zip --out $R/tr_acetree --every 3 --pose random --vary frame --grey --seed 20
[ -f $R/tr2_acetree/frames.csv ] || $DL $D/acetree/wormguides_nuclei.zip --out $R/tr2_acetree --every 2 --pose random --vary frame --grey --seed 40 --workers 2
[ -f $R/tr_sim/frames.csv ] || $DL --simulate 6 --out $R/tr_sim --every 2 --pose random --vary frame --grey --seed 101
[ -f $R/tr2_sim/frames.csv ] || $DL --simulate 10 --out $R/tr2_sim --every 2 --pose random --vary frame --grey --seed 202 --workers 2
# calibration of the population model (scripts/zoo_population.py): the same training embryos,
# new random poses/optics, made with the current renderer
i=0
for t in CD20240930_JIM762_L4 CD20241009_JIM767_25_L1 CD20241009_JIM767_25_L5 CD20241010_JIM767_25_L2 CD20241107_JIM767_25_L1; do
  i=$((i+1))
  [ -f $R/cal_$t/frames.csv ] || $DL $D/epic/$t.csv --out $R/cal_$t --every 3 --pose random --vary frame --grey --seed $((50+i)) --workers 2
done
[ -f $R/cal_acetree/frames.csv ] || $DL $D/acetree/wormguides_nuclei.zip --out $R/cal_acetree --every 4 --pose random --vary frame --grey --seed 60 --workers 2
[ -f $R/cal_sim/frames.csv ] || $DL --simulate 6 --out $R/cal_sim --every 4 --pose random --vary frame --grey --seed 303 --workers 2
# experiment (seventh session, not used by the shipped models): the training embryos framed like EPIC movies
# (default pose, one optics draw per movie), three draws each, added to the total regressor's training data
# (scripts/zoo_population.py --gather DIR --gather-extra 'trf_*'; benchmarks/RESULTS.md, population)
i=0
for t in CD20240930_JIM762_L4 CD20241009_JIM767_25_L1 CD20241009_JIM767_25_L5 CD20241010_JIM767_25_L2 CD20241107_JIM767_25_L1; do
  i=$((i+1))
  for s in 1 2 3; do
    [ -f $R/trf_${t}_s$s/frames.csv ] || $DL $D/epic/$t.csv --out $R/trf_${t}_s$s --every 3 --grey --seed $((100+10*i+s)) --workers 2
  done
done
for s in 1 2 3; do
  [ -f $R/trf_acetree_s$s/frames.csv ] || $DL $D/acetree/wormguides_nuclei.zip --out $R/trf_acetree_s$s --every 4 --grey --seed $((160+s)) --workers 2
  [ -f $R/trf_sim_s$s/frames.csv ] || $DL --simulate 2 --out $R/trf_sim_s$s --every 3 --grey --seed $((500+s)) --workers 2
done
# int8 calibration of the nuclei network (scripts/zoo_int8.py): a training embryo and a fresh simulated one
[ -f $R/calib_L2/frames.csv ] || $DL $D/epic/CD20241010_JIM767_25_L2.csv --out $R/calib_L2 --every 4 --pose random --vary frame --grey --seed 71
[ -f $R/calib_sim/frames.csv ] || $DL --simulate 1 --out $R/calib_sim --every 4 --pose random --vary frame --seed 171
# held out: embryo L3 and a simulated seed never used in training
[ -f $R/val_L3/frames.csv ] || $DL $D/epic/CD20241010_JIM767_25_L3.csv --out $R/val_L3 --every 2 --pose random --vary frame --grey --seed 7
# the held-out real embryo framed like an EPIC movie (default pose, one optics draw per movie, RGB), 3 movies
for s in 8 9 10; do
  [ -f $R/val_L3_framed_s$s/frames.csv ] || $DL $D/epic/CD20241010_JIM767_25_L3.csv --out $R/val_L3_framed_s$s --every 6 --seed $s
done
[ -f $R/val_sim/frames.csv ] || $DL --simulate 1 --out $R/val_sim --every 2 --pose random --vary frame --grey --seed 999
# development only (never trained on, never used for choices): training embryos framed like EPIC movies,
# one optics draw per movie (RESULTS: nuclei "EPIC-like movies")
for t in CD20241010_JIM767_25_L2 CD20241009_JIM767_25_L1; do
  for s in 21 22 23; do
    [ -f $R/dev_framed_${t: -2}_s$s/frames.csv ] || $DL $D/epic/$t.csv --out $R/dev_framed_${t: -2}_s$s --every 6 --seed $s
  done
done
# development only: fresh simulated embryos framed like EPIC movies (seventh session)
for s in 24 25 26; do
  [ -f $R/dev_framed_sim_s$s/frames.csv ] || $DL --simulate 1 --out $R/dev_framed_sim_s$s --every 6 --seed $s
done
# membrane: int8 calibration (a training embryo, new pose/optics seed) and the held-out embryo
[ -f $R/mcal_L4/frames.csv ] || $DL $D/epic/CD20240930_JIM762_L4.csv --kind membrane --out $R/mcal_L4 --every 4 --pose random --vary frame --grey --seed 81
[ -f $R/mval_L3/frames.csv ] || $DL $D/epic/CD20241010_JIM767_25_L3.csv --kind membrane --out $R/mval_L3 --every 4 --pose random --vary frame --grey --seed 9
echo done
