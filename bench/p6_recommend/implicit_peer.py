"""P6 peer: implicit's item-item kNN (CosineRecommender) and ALS on MovieLens-100K.

Same protocol as the Rust bench (adapters/rules/benches/p6_recommend.rs): every rating is an
interaction; per user, interactions ordered by (timestamp, line number); the last one is the
test item; candidates exclude the user's training items; HR@10 and NDCG@10 over all users.

Usage: implicit_peer.py --ours ours.json --out combined.json
Prints each model's metrics and timings, then one final ratio line. Exits non-zero when the
data or a peer is missing (it never prints a made-up figure).
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

K = 10
ROUNDS = 5


def load(path):
    per_user = {}
    with open(path, encoding="utf-8") as f:
        next(f)
        for n, line in enumerate(f, start=1):
            p = line.rstrip("\n").split("\t")
            if len(p) < 4:
                continue
            u, i, t = int(p[0]), int(p[1]), int(float(p[3]))
            per_user.setdefault(u, []).append((t, n, i))
    train, test = [], {}
    for u in sorted(per_user):
        evs = sorted(per_user[u])
        test[u] = evs[-1][2]
        for t, _, i in evs[:-1]:
            train.append((u, i))
    return train, test


def metrics(ranked, test):
    hr = ndcg = 0.0
    for u, t in test.items():
        r = ranked.get(u, [])
        if t in r:
            hr += 1
            ndcg += 1.0 / math.log2(r.index(t) + 2)
    return hr / len(test), ndcg / len(test)


def run_model(name, make, matrix, users, uidx, iids, test):
    fits, lats, p99s, result = [], [], [], None
    for rnd in range(ROUNDS + 1):
        model = make()
        t0 = time.perf_counter()
        model.fit(matrix, show_progress=False)
        fit = time.perf_counter() - t0
        ranked, lat = {}, []
        for u in users:
            row = uidx[u]
            t = time.perf_counter()
            ids, _ = model.recommend(row, matrix[row : row + 1], N=K, filter_already_liked_items=True)
            lat.append((time.perf_counter() - t) * 1e6)
            ranked[u] = [iids[j] for j in ids]
        if rnd == 0:
            result = metrics(ranked, test)
            continue
        fits.append(fit)
        lat.sort()
        lats.append(statistics.median(lat))
        p99s.append(lat[min(len(lat) - 1, len(lat) * 99 // 100)])
    hr, ndcg = result
    out = {
        "name": name,
        "hr10": hr,
        "ndcg10": ndcg,
        "fit_s": statistics.median(fits),
        "request_us_p50": statistics.median(lats),
        "request_us_p99": statistics.median(p99s),
        "rounds": ROUNDS,
    }
    print(
        f"P6 {name}: HR@10 {hr:.4f} NDCG@10 {ndcg:.4f} fit {out['fit_s']:.3f} s, "
        f"request p50 {out['request_us_p50']:.0f} us p99 {out['request_us_p99']:.0f} us "
        f"(median of {ROUNDS})"
    )
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    assets = os.environ.get(
        "MERCHANT_AI_ASSETS", os.path.expanduser("~/.cache/merchant-ai/assets")
    )
    path = os.path.join(assets, "recbole/dataset_example/ml-100k/ml-100k.inter")
    if not os.path.exists(path):
        print(f"P6: peer data missing ({path}); no comparison", file=sys.stderr)
        return 2
    try:
        import implicit
        import numpy as np
        import scipy
        import scipy.sparse as sp
        from implicit.als import AlternatingLeastSquares
        from implicit.nearest_neighbours import CosineRecommender
    except ImportError as e:
        print(f"P6: peer not found ({e}); no comparison", file=sys.stderr)
        return 2
    import warnings

    # implicit converts a matrix internally during fit and warns about it; that cost is its own.
    warnings.filterwarnings("ignore", message="Method expects CSR input")
    with open(args.ours, encoding="utf-8") as f:
        ours = json.load(f)

    train, test = load(path)
    users = sorted(test)
    items = sorted({i for _, i in train} | set(test.values()))
    uidx = {u: n for n, u in enumerate(users)}
    iidx = {i: n for n, i in enumerate(items)}
    iids = items
    rows = [uidx[u] for u, _ in train]
    cols = [iidx[i] for _, i in train]
    matrix = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)),
        shape=(len(users), len(items)),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0

    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    peers = {}
    for k in (20, 50, 100, 200):
        peers[f"implicit CosineRecommender K={k}"] = run_model(
            f"implicit CosineRecommender K={k}",
            lambda k=k: CosineRecommender(K=k, num_threads=threads),
            matrix, users, uidx, iids, test,
        )
    peers["implicit ALS"] = run_model(
        "implicit ALS (64 factors, 15 iterations, reg 0.05, seed 0)",
        lambda: AlternatingLeastSquares(
            factors=64, iterations=15, regularization=0.05, random_state=0,
            num_threads=threads,
        ),
        matrix, users, uidx, iids, test,
    )

    knn_default = peers["implicit CosineRecommender K=20"]
    knn_best = max(
        (v for k, v in peers.items() if "Cosine" in k), key=lambda v: (v["hr10"], v["ndcg10"])
    )
    o = ours["ours"]
    combined = {
        "benchmark": "P6",
        "versions": {
            "implicit": implicit.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "python": sys.version.split()[0],
            "merchant-ai-rules": o.get("version"),
            "data": "recbole 1.2.1 ml-100k",
        },
        "threads": threads,
        "ours": o,
        "popularity": ours.get("popularity"),
        "peers": peers,
        "users": len(users),
        "items": len(items),
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(combined, f, indent=2)

    def ratio(a, b):
        return a / b if b else float("inf")

    print(
        f"P6 popularity baseline: HR@10 {ours['popularity']['hr10']:.4f} "
        f"NDCG@10 {ours['popularity']['ndcg10']:.4f}"
    )
    print(
        f"recommend: merchant-ai-rules HR@10 {o['hr10']:.4f} NDCG@10 {o['ndcg10']:.4f} vs "
        f"{knn_default['name']} HR@10 {knn_default['hr10']:.4f} NDCG@10 {knn_default['ndcg10']:.4f} "
        f"= {ratio(o['hr10'], knn_default['hr10']):.2f}x HR, "
        f"{ratio(o['ndcg10'], knn_default['ndcg10']):.2f}x NDCG; best kNN ({knn_best['name']}) "
        f"{ratio(o['hr10'], knn_best['hr10']):.2f}x HR, {ratio(o['ndcg10'], knn_best['ndcg10']):.2f}x NDCG; "
        f"ALS {ratio(o['hr10'], peers['implicit ALS']['hr10']):.2f}x HR, "
        f"{ratio(o['ndcg10'], peers['implicit ALS']['ndcg10']):.2f}x NDCG; "
        f"speed vs kNN K=20: fit {o['fit_s']:.3f} s vs {knn_default['fit_s']:.3f} s, "
        f"request p50 {o['request_us_p50']:.0f} us vs {knn_default['request_us_p50']:.0f} us "
        f"(median of {ROUNDS})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
