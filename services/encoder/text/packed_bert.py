"""A BERT-family sentence model run on packed tokens: no padding anywhere but inside attention.

A padded pass computes every layer for `texts x longest` tokens. For short texts almost all of a
layer's work is its dense layers (query, key, value, output, feed-forward: ~12 d² per token, against
~2 L d for attention at L tokens), and those act on each token alone. So here the dense layers
and layer norms run on the real tokens of all texts laid end to end, and only attention scatters
them into a padded block, per text, and gathers them back. A pass then costs what its real tokens
cost, whatever the mix of lengths: 28% of a 16-text pass's tokens were padding when the 64 texts at
hand were split by length, about 6% when 2,000 were sorted at once (MovieLens titles and tags).

Only what this module reproduces exactly is run this way: a sentence-transformers model whose first
module is a BertModel with absolute positions and GELU, followed by mean pooling; a lone Normalize
after the pooling runs inside the pass, any other modules after it (Dense, ...) run as they are.
`Embedder` checks its rows against the model's own forward pass at start and keeps the padded pass
otherwise.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys.shared.logs import log_event

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

_log = logging.getLogger(__name__)


def packable(model: SentenceTransformer) -> str:
    """Why the model cannot run packed ('' when it can)."""
    if len(model) < 2:
        return "the model has no pooling module"
    auto_model: Any = getattr(model[0], "auto_model", None)
    if type(auto_model).__name__ != "BertModel":
        return f"the transformer is {type(auto_model).__name__}, not a BertModel"
    config = auto_model.config
    if getattr(config, "position_embedding_type", "absolute") != "absolute" or config.is_decoder:
        return "the BertModel is not an encoder with absolute positions"
    pooling = model[1]
    if type(pooling).__name__ != "Pooling" or getattr(pooling, "pooling_mode", None) != "mean":
        return "the pooling is not mean pooling"
    if not getattr(pooling, "include_prompt", True):
        return "the pooling leaves a prompt out"
    if getattr(config, "hidden_act", None) != "gelu":
        return f"the activation is {getattr(config, 'hidden_act', None)!r}, not gelu"
    return ""


class PackedBert:
    """`forward` gives the same rows as the model's own padded pass (see `packable`).

    The pass runs compiled by TorchScript (see packed_layers.py for why); where TorchScript cannot
    compile it (a torch without it), the same modules run eagerly, slower beside a busy event loop.
    """

    def __init__(self, model: SentenceTransformer) -> None:
        reason = packable(model)
        if reason:
            raise ValueError(reason)
        if model.device.type != "cpu":
            raise ValueError(f"packed passes run on the CPU only, the model is on {model.device}")
        from recsys.encoder.text.packed_layers import PackedEncoder

        after_pooling = list(model)[2:]
        # A trailing Normalize (the shipped model's) runs inside the compiled pass: one GIL handover fewer.
        normalize = len(after_pooling) == 1 and _plain_normalize(after_pooling[0])
        self._encoder, self.compiled = _compiled(PackedEncoder(model[0].auto_model, normalize))
        self.layers = list(self._encoder.layers)
        self._after_pooling = [] if normalize else after_pooling

    def forward(
        self,
        ids: Sequence[Sequence[int]],
        type_ids: Sequence[Sequence[int]],
        between_layers: Callable[[], None] | None = None,
    ) -> torch.Tensor:
        """Sentence embeddings of the texts whose token ids are given; `between_layers` runs before each layer."""
        import torch

        # Built in numpy: each torch call out here would hand the GIL over once more.
        lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
        longest = int(lengths.max())
        texts = len(ids)
        text_of = np.repeat(np.arange(texts), lengths)
        positions = np.concatenate([np.arange(n) for n in lengths])
        tensors = [
            torch.from_numpy(array)
            for array in (
                np.concatenate([np.asarray(row, dtype=np.int64) for row in ids]),
                np.concatenate([np.asarray(row, dtype=np.int64) for row in type_ids]),
                positions,
                text_of,
                text_of * longest + positions,  # row of each real token in the padded block attention works on
                (np.arange(longest)[None, :] < lengths[:, None]).reshape(texts, 1, 1, longest),
                lengths,
            )
        ]
        flat_ids, flat_types, positions_t, text_of_t, slots, key_mask, counts = tensors

        encoder = self._encoder
        if between_layers is None:
            pooled = encoder(flat_ids, flat_types, positions_t, text_of_t, slots, key_mask, counts, texts, longest)
        else:
            hidden = encoder.embed(flat_ids, flat_types, positions_t)
            for layer in self.layers:
                between_layers()
                hidden = layer(hidden, slots, texts, longest, key_mask)
            pooled = encoder.pool(hidden, text_of_t, counts, texts)
        features: dict[str, Any] = {"sentence_embedding": pooled}
        for module in self._after_pooling:
            features = module(features)
        return features["sentence_embedding"]


def _plain_normalize(module: Any) -> bool:
    """Whether the module is sentence-transformers' Normalize acting on the sentence embedding."""
    return type(module).__name__ == "Normalize" and all(
        getattr(module, name, "sentence_embedding") == "sentence_embedding"
        for name in ("module_input_name", "module_output_name")
    )


def _compiled(encoder: Any) -> tuple[Any, bool]:
    """The encoder compiled by TorchScript, or as it is when it cannot be; and whether it was."""
    import torch

    try:
        with warnings.catch_warnings():
            # Deprecated in favour of torch.compile, which needs a C++ toolchain at run time and
            # minutes of compiling per shape on a CPU; TorchScript still releases the GIL per graph.
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.script(encoder), True
    except Exception as exc:
        log_event(_log, "packed_pass_not_compiled", logging.WARNING, error=repr(exc))
        return encoder, False
