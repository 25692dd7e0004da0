"""The reference vectors: `SentenceTransformer.encode` itself, run in the model's own thread."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recsys.encoder.text.embedder import Embedder


def st_encode(embedder: Embedder, texts: str | Sequence[str]) -> np.ndarray:
    """What sentence-transformers gives for `texts`; in the model thread, so the session's model stays fast."""
    return np.asarray(embedder.thread.call(embedder.model.encode, texts))
