"""Tokenization ahead of the model: each text's full token count and the ids the model will read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tokenizers import Encoding, Tokenizer


@dataclass(frozen=True, slots=True)
class TokenizedText:
    """One text as the batcher queues it.

    `tokens` counts the whole text (special tokens included, before truncation): it decides whether
    the text is cut or refused. `ids` and `type_ids` are what the model reads, already truncated;
    they are None when the model tokenizes the text itself in its forward pass.
    """

    text: str
    tokens: int
    ids: list[int] | None = None
    type_ids: list[int] | None = None


class TextTokenizer:
    """A private copy of the model's fast tokenizer, configured as sentence-transformers calls it.

    A copy, because the model's own tokenizer changes its truncation and padding state on every
    call, and a fast tokenizer refuses concurrent use while that state changes. The copies here are
    never reconfigured after construction, so any number of threads may encode at once.
    """

    def __init__(self, backend_json: str, max_tokens: int, truncation_side: str = "right") -> None:
        self.max_tokens = max_tokens
        self._whole = Tokenizer.from_str(backend_json)
        self._whole.no_truncation()
        self._whole.no_padding()
        # Only texts longer than max_tokens go through this one; HF's `truncation="longest_first"`
        # on a single sequence cuts the content and keeps the special tokens, as this does.
        self._cut = Tokenizer.from_str(backend_json)
        self._cut.no_padding()
        self._cut.enable_truncation(max_tokens, strategy="longest_first", direction=truncation_side)

    def count(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each whole text, special tokens included."""
        return [len(encoding.ids) for encoding in self._whole.encode_batch(list(texts), add_special_tokens=True)]

    def tokenize(self, texts: Sequence[str]) -> list[TokenizedText]:
        """Counts every text and keeps the ids the model reads (cut to max_tokens)."""
        whole = self._whole.encode_batch(list(texts), add_special_tokens=True)
        long = [index for index, encoding in enumerate(whole) if len(encoding.ids) > self.max_tokens]
        cut: dict[int, Encoding] = {}
        if long:
            encodings = self._cut.encode_batch([texts[i] for i in long], add_special_tokens=True)
            cut = dict(zip(long, encodings, strict=True))
        result = []
        for index, (text, encoding) in enumerate(zip(texts, whole, strict=True)):
            read = cut.get(index, encoding)
            result.append(TokenizedText(text, len(encoding.ids), list(read.ids), list(read.type_ids)))
        return result


def text_only(texts: Sequence[str], counts: Sequence[int]) -> list[TokenizedText]:
    """Texts the model tokenizes itself, with their counts for the batcher's budget."""
    return [TokenizedText(text, count) for text, count in zip(texts, counts, strict=True)]
