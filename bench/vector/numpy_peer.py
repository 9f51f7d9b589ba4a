"""Peer for benches/vector_search.rs: brute-force cosine top-k with numpy, single-threaded.

Usage: numpy_peer.py DATA QUERIES N DIM NQ K
Reads row-major little-endian f32 matrices (rows already L2-normalized) written by the bench,
times one top-k per query (a matrix-vector product, then argpartition and a sort of the k
best), and prints one JSON object: latencies in ms, the top-k row indices of every query (for
the bench to check agreement), versions and the BLAS kernel in use.
"""
import json
import sys
import time

import numpy as np


def main() -> None:
    data_path, query_path, n, dim, nq, k = sys.argv[1:7]
    n, dim, nq, k = int(n), int(dim), int(nq), int(k)
    data = np.fromfile(data_path, dtype="<f4").reshape(n, dim)
    queries = np.fromfile(query_path, dtype="<f4").reshape(nq, dim)

    def top(q: np.ndarray) -> np.ndarray:
        s = data @ q
        idx = np.argpartition(-s, k)[:k]
        # best first; ties by row index (= ascending id in the bench)
        return idx[np.lexsort((idx, -s[idx]))]

    for q in queries[:5]:  # warm-up, discarded
        top(q)
    lat, ids = [], []
    for q in queries:
        t = time.perf_counter()
        r = top(q)
        lat.append((time.perf_counter() - t) * 1000.0)
        ids.append([int(i) for i in r])
    blas = None
    try:
        from threadpoolctl import threadpool_info

        blas = [
            {key: i.get(key) for key in ("internal_api", "version", "architecture", "num_threads")}
            for i in threadpool_info()
        ]
    except Exception as e:  # threadpoolctl is optional
        blas = f"threadpoolctl unavailable: {type(e).__name__}"
    print(json.dumps({"numpy": np.__version__, "blas": blas, "latency_ms": lat, "ids": ids}))


if __name__ == "__main__":
    main()
