"""Test helpers: the real model behind gates a test opens, and reading the encoder's Prometheus metrics."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Callable

import numpy as np

from recsys.encoder.text.embedder import Embedder
from recsys.encoder.text.tokenization import TokenizedText


class GatedEmbedder(Embedder):
    """The real model behind gates the test opens: for warm-up, and for every forward pass."""

    def __init__(self, inner: Embedder) -> None:
        self.__dict__.update(inner.__dict__)  # the same loaded model and tokenizers
        self.warm_gate = threading.Event()
        self.pass_gate = threading.Event()
        self.pass_gate.set()
        self.in_pass = threading.Event()
        self.seen: list[str] = []

    def warm_up(self, max_size: int, max_tokens: int) -> float:
        if not self.warm_gate.wait(timeout=10):
            raise TimeoutError("test never released the warm-up")
        return super().warm_up(max_size, max_tokens)

    def forward(self, batch: list[TokenizedText], between_layers: Callable[[], None] | None = None) -> np.ndarray:
        self.seen.extend(text.text for text in batch)
        self.in_pass.set()
        if not self.pass_gate.wait(timeout=10):
            raise TimeoutError("test never released the model")
        return super().forward(batch, between_layers)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
