"""The loaded model: packed passes, the one thread every computation runs in."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer
from sentence_transformers.models import Pooling

from recsys.encoder.text.embedder import Embedder
from recsys.encoder.text.packed_bert import PackedBert, packable
from tests.encoder.reference import st_encode

TEXTS = [
    "a",
    "Toy Story (1995) Adventure|Animation|Children|Comedy|Fantasy pixar",
    "naïve café — déjà vu, emoji 🙂 and\ttabs",
    "the crew of a space tug meets a deadly alien " * 80,  # cut at the model's 256 tokens
]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_on_a_cpu_the_shipped_model_runs_packed_and_gives_sentence_transformers_vectors(embedder: Embedder) -> None:
    assert not embedder.pads

    rows = embedder.forward(embedder.tokenize(TEXTS))

    assert cosines(rows, st_encode(embedder, TEXTS)).min() >= 0.99999


def test_packed_rows_do_not_depend_on_the_company_a_text_keeps(embedder: Embedder) -> None:
    packed = PackedBert(embedder.model)
    tokenized = embedder.tokenize(TEXTS)

    def rows(batch: list[int]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = packed.forward([tokenized[i].ids or [] for i in batch], [tokenized[i].type_ids or [] for i in batch])
        return out.numpy()

    together = embedder.thread.call(rows, [0, 1, 2, 3])
    alone = np.concatenate([embedder.thread.call(rows, [i]) for i in range(4)])

    assert cosines(together, alone).min() >= 0.99999


def test_the_packed_pass_is_compiled_and_gives_the_same_rows_in_one_call_or_layer_by_layer(embedder: Embedder) -> None:
    packed = PackedBert(embedder.model)
    tokenized = embedder.tokenize(TEXTS)
    ids, types = [t.ids or [] for t in tokenized], [t.type_ids or [] for t in tokenized]
    layers_seen: list[int] = []

    def rows(between: Callable[[], None] | None) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return packed.forward(ids, types, between).numpy()

    in_one_call = embedder.thread.call(rows, None)
    layer_by_layer = embedder.thread.call(rows, lambda: layers_seen.append(len(layers_seen)))

    assert packed.compiled
    assert len(layers_seen) == len(packed.layers) == 6
    np.testing.assert_allclose(layer_by_layer, in_one_call, rtol=0, atol=1e-6)
    assert cosines(in_one_call, st_encode(embedder, TEXTS)).min() >= 0.99999
    # The shipped model ends in Normalize, which the compiled pass takes in.
    np.testing.assert_allclose(np.linalg.norm(in_one_call, axis=1), 1.0, rtol=0, atol=1e-5)


def test_where_torchscript_cannot_compile_the_same_modules_run_eagerly_with_the_same_rows(
    embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    tokenized = embedder.tokenize(TEXTS)
    ids, types = [t.ids or [] for t in tokenized], [t.type_ids or [] for t in tokenized]
    compiled = PackedBert(embedder.model)

    def refuse(module: object) -> object:
        raise RuntimeError("no TorchScript here")

    monkeypatch.setattr(torch.jit, "script", refuse)
    eager = PackedBert(embedder.model)

    def rows(packed: PackedBert) -> np.ndarray:
        with torch.inference_mode():
            return packed.forward(ids, types).numpy()

    assert compiled.compiled and not eager.compiled
    np.testing.assert_allclose(embedder.thread.call(rows, eager), embedder.thread.call(rows, compiled), atol=1e-6)


def test_a_model_whose_activation_is_not_gelu_is_not_packed(embedder: Embedder) -> None:
    config = embedder.model[0].auto_model.config
    try:
        config.hidden_act = "gelu_new"
        reason = packable(embedder.model)
    finally:
        config.hidden_act = "gelu"

    assert reason == "the activation is 'gelu_new', not gelu"


def test_a_model_whose_pooling_is_not_a_mean_is_not_packed(embedder: Embedder) -> None:
    transformer = embedder.model[0]
    cls_pooled = SentenceTransformer(modules=[transformer, Pooling(384, pooling_mode="cls")], device="cpu")

    assert packable(cls_pooled) == "the pooling is not mean pooling"
    assert packable(embedder.model) == ""


def test_passes_run_in_the_model_thread_whoever_asks(embedder: Embedder) -> None:
    ran_in: set[int] = set()
    batch = embedder.tokenize(TEXTS[:2])

    embedder.forward(batch, lambda: ran_in.add(threading.get_ident()))
    with ThreadPoolExecutor(1) as other:
        other.submit(embedder.forward, batch, lambda: ran_in.add(threading.get_ident())).result()

    model_thread = embedder.thread.call(threading.get_ident)
    assert ran_in == {model_thread}
    assert model_thread != threading.get_ident()


def test_loading_the_model_writes_no_progress_bar_between_the_log_lines() -> None:
    """A process of its own: the bar is written once per process, on the first load."""
    script = (
        "import logging, sys; logging.basicConfig(stream=sys.stdout);"
        "from recsys.encoder.text.embedder import Embedder; Embedder.load().thread.close()"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert "Loading weights" not in loaded.stderr and "%|" not in loaded.stderr, loaded.stderr[-500:]
