"""The packed BERT pass as modules TorchScript compiles: a pass takes the GIL a few times, not at every operation.

Why: the model thread shares the GIL with the event loop. Run eagerly, a pass is some 150 torch
operations and each gives the GIL up and takes it back; whenever the event loop is busy (a burst of
finished ingestion entries, gRPC calls at concurrency 64), each taking-back waits up to the
interpreter's switch interval (5 ms). Measured on the 2-core development machine with a Python
thread spinning beside the model thread: a one-text pass took 365 ms (p50) eagerly and 69 ms
compiled, a 40-text pass 1,260 ms and 442 ms; with nothing beside it 17 and 15 ms, 132 and 118 ms.
A compiled method runs its whole graph with the GIL released.

These modules share the model's parameters (nothing is copied) and compute what BertModel computes
in inference (dropout off), over packed tokens: see packed_bert.py.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class PackedLayer(nn.Module):
    """One BertLayer over packed tokens; attention scatters them into a padded block per text."""

    def __init__(self, layer: Any, heads: int) -> None:
        super().__init__()
        attention = layer.attention.self
        self.query: nn.Module = attention.query
        self.key: nn.Module = attention.key
        self.value: nn.Module = attention.value
        self.scaling = float(attention.scaling)
        self.attention_dense: nn.Module = layer.attention.output.dense
        self.attention_norm: nn.Module = layer.attention.output.LayerNorm
        self.up: nn.Module = layer.intermediate.dense
        self.down: nn.Module = layer.output.dense
        self.output_norm: nn.Module = layer.output.LayerNorm
        self.heads = int(heads)

    def _padded(self, projected: torch.Tensor, slots: torch.Tensor, texts: int, longest: int) -> torch.Tensor:
        width = projected.shape[1]
        block = projected.new_zeros((texts * longest, width))
        block.index_copy_(0, slots, projected)
        return block.view(texts, longest, self.heads, width // self.heads).transpose(1, 2)

    def forward(
        self, hidden: torch.Tensor, slots: torch.Tensor, texts: int, longest: int, key_mask: torch.Tensor
    ) -> torch.Tensor:
        query = self._padded(self.query(hidden), slots, texts, longest)
        key = self._padded(self.key(hidden), slots, texts, longest)
        value = self._padded(self.value(hidden), slots, texts, longest)
        attended = nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=key_mask, scale=self.scaling)
        attended = attended.transpose(1, 2).reshape(texts * longest, hidden.shape[1]).index_select(0, slots)
        hidden = self.attention_norm(self.attention_dense(attended) + hidden)
        return self.output_norm(self.down(nn.functional.gelu(self.up(hidden))) + hidden)


class PackedEncoder(nn.Module):
    """BertModel's embeddings, layers and mean pooling over packed tokens, then L2 normalization if asked.

    `forward` runs it all in one call; `embed`, each of `layers` and `pool` let the caller act
    between layers (a nested live pass) at the cost of one GIL handover per call.
    """

    def __init__(self, bert: Any, normalize: bool) -> None:
        super().__init__()
        self.normalize = normalize  # the model's Normalize module, folded in
        embeddings = bert.embeddings
        self.word: nn.Module = embeddings.word_embeddings
        self.position: nn.Module = embeddings.position_embeddings
        self.token_type: nn.Module = embeddings.token_type_embeddings
        self.embedding_norm: nn.Module = embeddings.LayerNorm
        heads = int(bert.config.num_attention_heads)
        self.layers = nn.ModuleList([PackedLayer(layer, heads) for layer in bert.encoder.layer])

    @torch.jit.export
    def embed(self, ids: torch.Tensor, type_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self.embedding_norm(self.word(ids) + self.position(positions) + self.token_type(type_ids))

    @torch.jit.export
    def pool(self, hidden: torch.Tensor, text_of: torch.Tensor, lengths: torch.Tensor, texts: int) -> torch.Tensor:
        pooled = hidden.new_zeros((texts, hidden.shape[1]))
        pooled.index_add_(0, text_of, hidden)
        pooled = pooled / lengths.to(hidden.dtype)[:, None]
        if self.normalize:
            pooled = nn.functional.normalize(pooled, p=2.0, dim=-1)
        return pooled

    def forward(
        self,
        ids: torch.Tensor,
        type_ids: torch.Tensor,
        positions: torch.Tensor,
        text_of: torch.Tensor,
        slots: torch.Tensor,
        key_mask: torch.Tensor,
        lengths: torch.Tensor,
        texts: int,
        longest: int,
    ) -> torch.Tensor:
        hidden = self.embed(ids, type_ids, positions)
        for layer in self.layers:
            hidden = layer(hidden, slots, texts, longest, key_mask)
        return self.pool(hidden, text_of, lengths, texts)
