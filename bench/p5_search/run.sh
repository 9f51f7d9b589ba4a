#!/usr/bin/env bash
# P5: merchant-ai-rules keyword search vs bm25s on a seeded 100k-product catalog.
# Installs the peer in a virtualenv outside the repo, then runs the cargo bench, which
# writes the corpus and queries to a temp folder, runs both interleaved (5 rounds) and prints
# the ratio line last. Raw numbers: target/p5_search.json (or $P5_OUT).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${P5_VENV:-$HOME/.cache/merchant-ai/venv-bm25s}"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import bm25s, numba" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet bm25s numba
fi
export P5_PEER_PYTHON="$VENV/bin/python"
export OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 RAYON_NUM_THREADS=1
exec cargo bench -p merchant-ai-rules --bench p5_search
