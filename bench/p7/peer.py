"""P7 peer: llama.cpp through llama-cpp-python, greedy, on the same GGUF, prompt tokens and
thread count as merchant-ai-candle. Reads one JSON request per line on stdin
({"prompt": [token ids], "n": tokens to generate}) and answers one JSON line with the prefill
and decode times. The first line it writes names its version."""

import json
import sys
import time

import llama_cpp
import numpy as np


def last_logits(llm):
    """The logits of the last evaluated token (llama.cpp keeps only those without logits_all)."""
    return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))


def main():
    path, threads = sys.argv[1], int(sys.argv[2])
    llm = llama_cpp.Llama(model_path=path, n_ctx=2048, n_batch=2048, n_ubatch=2048,
                          n_threads=threads, n_threads_batch=threads, verbose=False, seed=0)
    print(json.dumps({"version": llama_cpp.__version__}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        prompt, n = req["prompt"], req["n"]
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt)
        t1 = time.perf_counter()
        toks = []
        while True:
            t = int(np.argmax(last_logits(llm)))
            toks.append(t)
            if len(toks) >= n:
                break
            llm.eval([t])
        t2 = time.perf_counter()
        print(json.dumps({"prefill_s": t1 - t0, "decode_s": t2 - t1, "tokens": toks}), flush=True)


if __name__ == "__main__":
    main()
