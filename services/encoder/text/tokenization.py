"""Tokenization ahead of the model: whether each text fits the model, and the ids the model will read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tokenizers import Encoding, Tokenizer


@dataclass(frozen=True, slots=True)
class TokenizedText:
    """One text as the batcher queues it.

    `tokens` counts the text's tokens (special tokens included) up to one past the model's limit:
    enough to decide whether the text is cut or refused. `ids` and `type_ids` are what the model
    reads, already truncated; they are None when the model tokenizes the text itself in its pass.
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
        self._from_the_start = truncation_side == "right"
        # A longer text is read through a window of about this many characters, cut at a space (see
        # _window): a 64 KiB text took 50 ms and 5 MB of memory to tokenize whole, for 256 tokens used.
        self._window_chars = (max_tokens + 2) * 32
        # Counting stops one token past the limit: the tokens of a 60,000-character text, all kept,
        # took gigabytes when a few such requests arrived together, and the model reads max_tokens.
        self._whole = Tokenizer.from_str(backend_json)
        self._whole.no_padding()
        self._whole.enable_truncation(max_tokens + 1, strategy="longest_first", direction=truncation_side)
        # Only texts longer than max_tokens go through this one; HF's `truncation="longest_first"`
        # on a single sequence cuts the content and keeps the special tokens, as this does.
        self._cut = Tokenizer.from_str(backend_json)
        self._cut.no_padding()
        self._cut.enable_truncation(max_tokens, strategy="longest_first", direction=truncation_side)

    def count(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text, special tokens included, up to max_tokens + 1 (more means too long)."""
        return [len(encoding.ids) for encoding in self._counted(texts)[1]]

    def tokenize(self, texts: Sequence[str]) -> list[TokenizedText]:
        """Counts every text and keeps the ids the model reads (cut to max_tokens)."""
        sources, whole = self._counted(texts)
        long = [index for index, encoding in enumerate(whole) if len(encoding.ids) > self.max_tokens]
        cut: dict[int, Encoding] = {}
        if long:
            encodings = self._cut.encode_batch([sources[i] for i in long], add_special_tokens=True)
            cut = dict(zip(long, encodings, strict=True))
        result = []
        for index, (text, encoding) in enumerate(zip(texts, whole, strict=True)):
            read = cut.get(index, encoding)
            result.append(TokenizedText(text, len(encoding.ids), list(read.ids), list(read.type_ids)))
        return result

    def _counted(self, texts: Sequence[str]) -> tuple[list[str], list[Encoding]]:
        """What each text is tokenized from (itself, or its window), and its counting encoding."""
        windows = [self._window(text) for text in texts]
        sources = [window or text for window, text in zip(windows, texts, strict=True)]
        encodings = self._whole.encode_batch(sources, add_special_tokens=True)
        # A window holding no more than max_tokens tokens (very long words) says nothing: the whole text then.
        short = [
            i for i, window in enumerate(windows) if window is not None and len(encodings[i].ids) <= self.max_tokens
        ]
        if short:
            again = self._whole.encode_batch([texts[i] for i in short], add_special_tokens=True)
            for index, encoding in zip(short, again, strict=True):
                sources[index], encodings[index] = texts[index], encoding
        return sources, encodings

    def _window(self, text: str) -> str | None:
        """The start of a long text (its end when truncating on the left), cut at a space; None to read it whole.

        The pre-tokenizers of sentence models split on whitespace before anything else, so the tokens
        of a window cut at a space are the first tokens of the whole text; when the window holds more
        than max_tokens of them, they are all the model reads. (The start-up check compares this
        fast path with the model's own preprocessing on a long text too.)
        """
        if len(text) <= self._window_chars:
            return None
        limit = self._window_chars
        for offset in range(limit, limit // 2, -1):
            position = offset if self._from_the_start else len(text) - offset
            if text[position].isspace():
                return text[:position] if self._from_the_start else text[position + 1 :]
        return None


def text_only(texts: Sequence[str], counts: Sequence[int]) -> list[TokenizedText]:
    """Texts the model tokenizes itself, with their counts for the batcher's budget."""
    return [TokenizedText(text, count) for text, count in zip(texts, counts, strict=True)]
