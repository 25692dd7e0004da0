from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetDriftReportRequest(_message.Message):
    __slots__ = ("space",)
    SPACE_FIELD_NUMBER: _ClassVar[int]
    space: str
    def __init__(self, space: _Optional[str] = ...) -> None: ...

class GetDriftReportResponse(_message.Message):
    __slots__ = ("report",)
    REPORT_FIELD_NUMBER: _ClassVar[int]
    report: DriftReport
    def __init__(self, report: _Optional[_Union[DriftReport, _Mapping]] = ...) -> None: ...

class DriftReport(_message.Message):
    __slots__ = ("space", "reference_size", "current_size", "sufficient", "reason", "centroid_cosine_distance", "centroid_euclidean_distance", "mmd2", "p_value", "permutations", "alpha", "drifted", "computed_at")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_SIZE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_SIZE_FIELD_NUMBER: _ClassVar[int]
    SUFFICIENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CENTROID_COSINE_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    CENTROID_EUCLIDEAN_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    MMD2_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    PERMUTATIONS_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    DRIFTED_FIELD_NUMBER: _ClassVar[int]
    COMPUTED_AT_FIELD_NUMBER: _ClassVar[int]
    space: str
    reference_size: int
    current_size: int
    sufficient: bool
    reason: str
    centroid_cosine_distance: float
    centroid_euclidean_distance: float
    mmd2: float
    p_value: float
    permutations: int
    alpha: float
    drifted: bool
    computed_at: float
    def __init__(self, space: _Optional[str] = ..., reference_size: _Optional[int] = ..., current_size: _Optional[int] = ..., sufficient: _Optional[bool] = ..., reason: _Optional[str] = ..., centroid_cosine_distance: _Optional[float] = ..., centroid_euclidean_distance: _Optional[float] = ..., mmd2: _Optional[float] = ..., p_value: _Optional[float] = ..., permutations: _Optional[int] = ..., alpha: _Optional[float] = ..., drifted: _Optional[bool] = ..., computed_at: _Optional[float] = ...) -> None: ...

class ListAnomaliesRequest(_message.Message):
    __slots__ = ("kind", "limit")
    KIND_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    kind: str
    limit: int
    def __init__(self, kind: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class Anomaly(_message.Message):
    __slots__ = ("kind", "space", "subject", "score", "threshold", "detected_at", "detail")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    DETECTED_AT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    kind: str
    space: str
    subject: str
    score: float
    threshold: float
    detected_at: float
    detail: str
    def __init__(self, kind: _Optional[str] = ..., space: _Optional[str] = ..., subject: _Optional[str] = ..., score: _Optional[float] = ..., threshold: _Optional[float] = ..., detected_at: _Optional[float] = ..., detail: _Optional[str] = ...) -> None: ...

class ListAnomaliesResponse(_message.Message):
    __slots__ = ("anomalies",)
    ANOMALIES_FIELD_NUMBER: _ClassVar[int]
    anomalies: _containers.RepeatedCompositeFieldContainer[Anomaly]
    def __init__(self, anomalies: _Optional[_Iterable[_Union[Anomaly, _Mapping]]] = ...) -> None: ...
