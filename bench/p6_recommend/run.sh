#!/usr/bin/env bash
# P6: merchant-ai-rules recommendations vs implicit (item-item kNN, ALS) and a popularity
# baseline on MovieLens-100K, leave-last-out. Installs the data and the peer outside the repo.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CACHE="${MERCHANT_AI_CACHE:-$HOME/.cache/merchant-ai}"
export MERCHANT_AI_ASSETS="${MERCHANT_AI_ASSETS:-$CACHE/assets}"
VENV="$CACHE/venv-implicit"
OUT="$ROOT/target/bench"
mkdir -p "$MERCHANT_AI_ASSETS" "$OUT"

# Same thread budget for everyone: ours is single-threaded.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 RAYON_NUM_THREADS=1
echo "threads: 1 (OMP_NUM_THREADS=$OMP_NUM_THREADS)"

if [ ! -f "$MERCHANT_AI_ASSETS/recbole/dataset_example/ml-100k/ml-100k.inter" ]; then
  python3 -m pip install --quiet --no-deps --target "$MERCHANT_AI_ASSETS" recbole==1.2.1
fi
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -c "import implicit, scipy, numpy" 2>/dev/null \
  || "$VENV/bin/pip" install --quiet implicit scipy numpy

cd "$ROOT"
P6_OUT="$OUT/p6_recommend_ours.json" cargo bench -p merchant-ai-rules --bench p6_recommend
"$VENV/bin/python" "$ROOT/bench/p6_recommend/implicit_peer.py" \
  --ours "$OUT/p6_recommend_ours.json" --out "$OUT/p6_recommend.json"
