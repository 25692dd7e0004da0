from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Precision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRECISION_UNSPECIFIED: _ClassVar[Precision]
    PRECISION_FLOAT32: _ClassVar[Precision]
    PRECISION_INT8: _ClassVar[Precision]
    PRECISION_UINT8: _ClassVar[Precision]
    PRECISION_BINARY: _ClassVar[Precision]
    PRECISION_UBINARY: _ClassVar[Precision]
PRECISION_UNSPECIFIED: Precision
PRECISION_FLOAT32: Precision
PRECISION_INT8: Precision
PRECISION_UINT8: Precision
PRECISION_BINARY: Precision
PRECISION_UBINARY: Precision

class EmbedRequest(_message.Message):
    __slots__ = ("texts", "normalize", "dimensions", "truncate", "precision")
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    NORMALIZE_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATE_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    texts: _containers.RepeatedScalarFieldContainer[str]
    normalize: bool
    dimensions: int
    truncate: bool
    precision: Precision
    def __init__(self, texts: _Optional[_Iterable[str]] = ..., normalize: _Optional[bool] = ..., dimensions: _Optional[int] = ..., truncate: _Optional[bool] = ..., precision: _Optional[_Union[Precision, str]] = ...) -> None: ...

class EmbedStreamRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: EmbedRequest
    def __init__(self, request: _Optional[_Union[EmbedRequest, _Mapping]] = ...) -> None: ...

class EmbedStreamResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: EmbedResponse
    def __init__(self, response: _Optional[_Union[EmbedResponse, _Mapping]] = ...) -> None: ...

class Embedding(_message.Message):
    __slots__ = ("values", "tokens", "truncated", "quantized")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    QUANTIZED_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    tokens: int
    truncated: bool
    quantized: bytes
    def __init__(self, values: _Optional[_Iterable[float]] = ..., tokens: _Optional[int] = ..., truncated: _Optional[bool] = ..., quantized: _Optional[bytes] = ...) -> None: ...

class EmbedResponse(_message.Message):
    __slots__ = ("embeddings", "dimensions", "model", "precision")
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    embeddings: _containers.RepeatedCompositeFieldContainer[Embedding]
    dimensions: int
    model: str
    precision: Precision
    def __init__(self, embeddings: _Optional[_Iterable[_Union[Embedding, _Mapping]]] = ..., dimensions: _Optional[int] = ..., model: _Optional[str] = ..., precision: _Optional[_Union[Precision, str]] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetModelInfoResponse(_message.Message):
    __slots__ = ("model", "dimensions", "max_tokens", "device", "dtype", "batching", "behavior_model")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    BATCHING_FIELD_NUMBER: _ClassVar[int]
    BEHAVIOR_MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    dimensions: int
    max_tokens: int
    device: str
    dtype: str
    batching: BatchingSettings
    behavior_model: BehaviorModelInfo
    def __init__(self, model: _Optional[str] = ..., dimensions: _Optional[int] = ..., max_tokens: _Optional[int] = ..., device: _Optional[str] = ..., dtype: _Optional[str] = ..., batching: _Optional[_Union[BatchingSettings, _Mapping]] = ..., behavior_model: _Optional[_Union[BehaviorModelInfo, _Mapping]] = ...) -> None: ...

class BehaviorModelInfo(_message.Message):
    __slots__ = ("version", "blend_weights", "user_evidence_k", "self_tuned", "validation_users", "validation_ndcg", "defaults_ndcg", "popularity_ndcg", "content_map", "event_type_weights", "item_evidence_k")
    class BlendWeightsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class EventTypeWeightsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BLEND_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    USER_EVIDENCE_K_FIELD_NUMBER: _ClassVar[int]
    SELF_TUNED_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_USERS_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_NDCG_FIELD_NUMBER: _ClassVar[int]
    DEFAULTS_NDCG_FIELD_NUMBER: _ClassVar[int]
    POPULARITY_NDCG_FIELD_NUMBER: _ClassVar[int]
    CONTENT_MAP_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    ITEM_EVIDENCE_K_FIELD_NUMBER: _ClassVar[int]
    version: int
    blend_weights: _containers.ScalarMap[str, float]
    user_evidence_k: float
    self_tuned: bool
    validation_users: int
    validation_ndcg: float
    defaults_ndcg: float
    popularity_ndcg: float
    content_map: bool
    event_type_weights: _containers.ScalarMap[str, float]
    item_evidence_k: float
    def __init__(self, version: _Optional[int] = ..., blend_weights: _Optional[_Mapping[str, float]] = ..., user_evidence_k: _Optional[float] = ..., self_tuned: _Optional[bool] = ..., validation_users: _Optional[int] = ..., validation_ndcg: _Optional[float] = ..., defaults_ndcg: _Optional[float] = ..., popularity_ndcg: _Optional[float] = ..., content_map: _Optional[bool] = ..., event_type_weights: _Optional[_Mapping[str, float]] = ..., item_evidence_k: _Optional[float] = ...) -> None: ...

class BatchingSettings(_message.Message):
    __slots__ = ("max_batch_size", "max_batch_tokens", "max_wait_ms", "queue_capacity", "max_texts_per_request", "bulk_share", "live_pass_ms", "live_grace_ms")
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_CAPACITY_FIELD_NUMBER: _ClassVar[int]
    MAX_TEXTS_PER_REQUEST_FIELD_NUMBER: _ClassVar[int]
    BULK_SHARE_FIELD_NUMBER: _ClassVar[int]
    LIVE_PASS_MS_FIELD_NUMBER: _ClassVar[int]
    LIVE_GRACE_MS_FIELD_NUMBER: _ClassVar[int]
    max_batch_size: int
    max_batch_tokens: int
    max_wait_ms: float
    queue_capacity: int
    max_texts_per_request: int
    bulk_share: float
    live_pass_ms: float
    live_grace_ms: float
    def __init__(self, max_batch_size: _Optional[int] = ..., max_batch_tokens: _Optional[int] = ..., max_wait_ms: _Optional[float] = ..., queue_capacity: _Optional[int] = ..., max_texts_per_request: _Optional[int] = ..., bulk_share: _Optional[float] = ..., live_pass_ms: _Optional[float] = ..., live_grace_ms: _Optional[float] = ...) -> None: ...
