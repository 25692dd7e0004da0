"""Tokenization ahead of the model: long texts read through a window give exactly the whole text's first tokens."""

from __future__ import annotations

import pytest

from recsys.encoder.text.embedder import Embedder
from recsys.encoder.text.tokenization import TextTokenizer

LONG_TEXTS = [
    "The crew of a commercial space tug meets a deadly creature, and nobody hears them scream. " * 300,
    "Überraschend lange Wörter, Satzzeichen!!! und Zahlen 12345; " * 900,
    ("word " * 3000) + "\n\n\n" + ("tail " * 3000),
    "no-spaces-at-all-" * 2000,  # no space to cut at: read whole
    "short words then " * 500 + "x" * 20_000,  # the window may end inside a very long token
]


@pytest.fixture(scope="module")
def tokenizers(embedder: Embedder) -> tuple[TextTokenizer, TextTokenizer]:
    backend = embedder.model.tokenizer.backend_tokenizer.to_str()
    return TextTokenizer(backend, embedder.max_tokens), TextTokenizer(backend, embedder.max_tokens, "left")


@pytest.mark.parametrize("side", ["right", "left"])
def test_a_long_text_gives_the_ids_the_model_reads_from_the_whole_text(
    embedder: Embedder, tokenizers: tuple[TextTokenizer, TextTokenizer], side: str
) -> None:
    tokenizer = tokenizers[0] if side == "right" else tokenizers[1]
    whole = embedder.model.tokenizer.backend_tokenizer.__class__.from_str(
        embedder.model.tokenizer.backend_tokenizer.to_str()
    )
    whole.no_padding()
    whole.enable_truncation(embedder.max_tokens, strategy="longest_first", direction=side)
    expected = [encoding.ids for encoding in whole.encode_batch(LONG_TEXTS, add_special_tokens=True)]

    got = tokenizer.tokenize(LONG_TEXTS)
    assert [text.ids for text in got] == expected
    assert all(text.tokens == embedder.max_tokens + 1 for text in got), "each is known to be too long"


def test_short_texts_are_counted_exactly(tokenizers: tuple[TextTokenizer, TextTokenizer]) -> None:
    counted = tokenizers[0].tokenize(["a", "Hello, World!"])
    assert [text.tokens for text in counted] == [3, 6]
