#!/usr/bin/env bash
# P3: all-MiniLM-L6-v2 embeddings, merchant-ai-candle vs sentence-transformers (PyTorch CPU),
# on the same product titles and the same 2 threads, interleaved rounds; prints ratio lines
# (batch 32, batch 256, single-query latency) and writes raw numbers to target/p3_embed.json
# (or $P3_OUT). Installs the assets (scripts/assets) and the peer in a virtualenv outside the
# repo (sentence-transformers pulls torch: several GB; set P3_VENV to reuse one).
set -euo pipefail
cd "$(dirname "$0")/../.."
export MERCHANT_AI_ASSETS="${MERCHANT_AI_ASSETS:-$HOME/.cache/merchant-ai/assets}"
scripts/assets >/dev/null
VENV="${P3_VENV:-$HOME/.cache/merchant-ai/venv-st}"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import sentence_transformers" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet sentence-transformers
fi
export P3_PEER_PYTHON="$VENV/bin/python"
THREADS="${P3_THREADS:-2}"
export RAYON_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" P3_THREADS="$THREADS"
exec cargo bench -p merchant-ai-candle --bench p3_embed
