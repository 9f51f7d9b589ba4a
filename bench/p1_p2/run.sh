#!/usr/bin/env bash
# P1/P2: the merchant-ai stack vs raw reqwest + serde_json against the same loopback mock.
# Release build (cargo bench profile); raw numbers in target/bench/p1_p2.json.
# Loopback only; every loop is bounded in count and time (the whole run takes about 30 s).
set -euo pipefail
cd "$(dirname "$0")/../.."
echo "machine: $(nproc) cores; client tokio workers 2, mock tokio workers 1 (printed again in the JSON)"
cargo bench -p merchant-ai-openai --bench p1_p2 "$@"
test -s target/bench/p1_p2.json
echo "wrote target/bench/p1_p2.json"
