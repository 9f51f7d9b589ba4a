"""P5 peer: bm25s on the corpus and queries written by the p5_search cargo bench.

Usage: python bm25s_peer.py DIR   (DIR holds corpus.jsonl and queries.jsonl)
Prints one JSON line: versions, index time, single-threaded p50/p99 latency, MRR@10 per type.
Text is tokenised the way merchant-ai-rules does it, so the peer gets the same CJK handling:
lowercase words, and CJK runs as unigrams + bigrams (documents) or bigrams (queries).
"""

import json
import platform
import sys
import time

import bm25s
import numba
import numpy as np


def is_cjk(c):
    o = ord(c)
    return (0x3040 <= o <= 0x30FF or 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF
            or 0xAC00 <= o <= 0xD7AF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x2FA1F)


def tokens(text, query=False):
    out = []
    run, kind = [], None

    def flush():
        if not run:
            return
        if kind == "w":
            out.append("".join(run).lower())
        elif query:
            if len(run) == 1:
                out.append(run[0])
            else:
                out.extend(run[i] + run[i + 1] for i in range(len(run) - 1))
        else:
            for i, c in enumerate(run):
                out.append(c)
                if i + 1 < len(run):
                    out.append(c + run[i + 1])

    for c in text:
        k = "c" if is_cjk(c) else ("w" if c.isalnum() else None)
        if k != kind:
            flush()
            run, kind = [], k
        if k is not None:
            run.append(c)
    flush()
    return out


def main():
    d = sys.argv[1]
    docs, ids = [], []
    with open(f"{d}/corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            p = json.loads(line)
            ids.append(p["id"])
            parts = [p["title"], p["title_zh"], p.get("brand") or "", " ".join(p["category"]),
                     " ".join(p["tags"]), " ".join(p["attributes"]), p["description"]]
            docs.append(tokens(" ".join(parts)))
    queries = []
    with open(f"{d}/queries.jsonl", encoding="utf-8") as f:
        for line in f:
            queries.append(json.loads(line))

    t = time.perf_counter()
    retriever = bm25s.BM25(backend="numba")
    retriever.index(docs, show_progress=False)
    index_s = time.perf_counter() - t
    vocab = retriever.vocab_dict

    def search(text):
        toks = [x for x in tokens(text, query=True) if x in vocab]
        if not toks:
            return []
        res, _scores = retriever.retrieve([toks], k=10, show_progress=False, n_threads=1)
        return res[0]

    # Warm-up (numba JIT compile excluded from timing, reported apart).
    t = time.perf_counter()
    for q in queries[:200]:
        search(q["query"])
    warmup_s = time.perf_counter() - t

    lat, rr = [], {}
    for q in queries:
        t = time.perf_counter()
        res = search(q["query"])
        lat.append((time.perf_counter() - t) * 1000.0)
        target = q["target"]
        v = 0.0
        for rank, i in enumerate(res):
            if ids[int(i)] == target:
                v = 1.0 / (rank + 1)
                break
        for k in (q["type"], "overall"):
            s, n = rr.get(k, (0.0, 0))
            rr[k] = (s + v, n + 1)
    lat = np.array(lat)
    print(json.dumps({
        "versions": {"bm25s": bm25s.__version__, "numba": numba.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
        "backend": "numba", "threads": 1, "warmup_s": warmup_s,
        "index_s": index_s,
        "p50_ms": float(np.percentile(lat, 50, method="nearest")),
        "p99_ms": float(np.percentile(lat, 99, method="nearest")),
        "mrr": {k: s / n for k, (s, n) in rr.items()},
    }))


if __name__ == "__main__":
    main()
