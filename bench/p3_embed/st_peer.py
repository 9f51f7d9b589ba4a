"""P3 peer: sentence-transformers (PyTorch CPU) on the same model, titles and threads.

Started by the cargo bench `p3_embed` with: MODEL_DIR THREADS TITLES_FILE. Prints one JSON line
when ready (versions), then answers each command read from stdin with one JSON line:
  b32     encode the titles in calls of 32 texts (batch_size=32)  -> {"secs": s}
  b256    encode the first 256 titles in one call (batch_size=256) -> {"secs": s}
  single  encode the first 32 titles one call each               -> {"latencies": [s, ...]}
  quit
"""
import json
import sys
import time


def main():
    model_dir, threads, titles_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    import sentence_transformers
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_dir, device="cpu")
    with open(titles_file, encoding="utf-8") as f:
        titles = [line.rstrip("\n") for line in f]

    def enc(texts, bs):
        return model.encode(texts, batch_size=bs, normalize_embeddings=True,
                            convert_to_numpy=True, show_progress_bar=False)

    print(json.dumps({
        "ready": True,
        "sentence_transformers": sentence_transformers.__version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }), flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "b32":
            t = time.perf_counter()
            for i in range(0, len(titles), 32):
                enc(titles[i:i + 32], 32)
            print(json.dumps({"secs": time.perf_counter() - t}), flush=True)
        elif cmd == "b256":
            t = time.perf_counter()
            enc(titles[:256], 256)
            print(json.dumps({"secs": time.perf_counter() - t}), flush=True)
        elif cmd == "single":
            lat = []
            for title in titles[:32]:
                t = time.perf_counter()
                enc([title], 1)
                lat.append(time.perf_counter() - t)
            print(json.dumps({"latencies": lat}), flush=True)
        elif cmd == "quit":
            break
        else:
            print(json.dumps({"error": f"unknown command {cmd!r}"}), flush=True)


if __name__ == "__main__":
    main()
