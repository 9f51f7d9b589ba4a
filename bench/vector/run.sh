#!/usr/bin/env bash
# Vector index benchmark: merchant-ai's VectorIndex vs numpy brute force (argpartition) on the
# same 100k x 384 seeded, normalized vectors, single-threaded, interleaved rounds.
# Installs numpy in a virtualenv outside the repo, then runs the cargo bench, which writes the
# data to a temp folder, runs both and prints the ratio line last.
# Raw numbers: target/vector_search.json (or $VECTOR_OUT).
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are left as the machine sets them.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${VECTOR_VENV:-$HOME/.cache/merchant-ai/venv-numpy}"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import numpy, threadpoolctl" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet numpy threadpoolctl
fi
export VECTOR_PEER_PYTHON="$VENV/bin/python"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 RAYON_NUM_THREADS=1
exec cargo bench -p merchant-ai --bench vector_search
