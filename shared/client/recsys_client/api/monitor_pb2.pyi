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
    __slots__ = ("space", "reference_size", "current_size", "sufficient", "reason", "centroid_cosine_distance", "centroid_euclidean_distance", "mmd2", "p_value", "permutations", "alpha", "drifted", "computed_at", "kernel_sigma", "mmd2_threshold", "classifier_auc", "classifier_p_value", "dimensions", "drifted_dimensions", "drifted_dimension_share", "top_dimensions", "reference_profile", "current_profile", "explanation", "reference_mode", "version")
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
    KERNEL_SIGMA_FIELD_NUMBER: _ClassVar[int]
    MMD2_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    CLASSIFIER_AUC_FIELD_NUMBER: _ClassVar[int]
    CLASSIFIER_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    DRIFTED_DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    DRIFTED_DIMENSION_SHARE_FIELD_NUMBER: _ClassVar[int]
    TOP_DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_PROFILE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_PROFILE_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_MODE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
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
    kernel_sigma: float
    mmd2_threshold: float
    classifier_auc: float
    classifier_p_value: float
    dimensions: int
    drifted_dimensions: int
    drifted_dimension_share: float
    top_dimensions: _containers.RepeatedCompositeFieldContainer[DimensionShift]
    reference_profile: WindowProfile
    current_profile: WindowProfile
    explanation: _containers.RepeatedScalarFieldContainer[str]
    reference_mode: str
    version: str
    def __init__(self, space: _Optional[str] = ..., reference_size: _Optional[int] = ..., current_size: _Optional[int] = ..., sufficient: _Optional[bool] = ..., reason: _Optional[str] = ..., centroid_cosine_distance: _Optional[float] = ..., centroid_euclidean_distance: _Optional[float] = ..., mmd2: _Optional[float] = ..., p_value: _Optional[float] = ..., permutations: _Optional[int] = ..., alpha: _Optional[float] = ..., drifted: _Optional[bool] = ..., computed_at: _Optional[float] = ..., kernel_sigma: _Optional[float] = ..., mmd2_threshold: _Optional[float] = ..., classifier_auc: _Optional[float] = ..., classifier_p_value: _Optional[float] = ..., dimensions: _Optional[int] = ..., drifted_dimensions: _Optional[int] = ..., drifted_dimension_share: _Optional[float] = ..., top_dimensions: _Optional[_Iterable[_Union[DimensionShift, _Mapping]]] = ..., reference_profile: _Optional[_Union[WindowProfile, _Mapping]] = ..., current_profile: _Optional[_Union[WindowProfile, _Mapping]] = ..., explanation: _Optional[_Iterable[str]] = ..., reference_mode: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class DimensionShift(_message.Message):
    __slots__ = ("dimension", "ks_statistic", "q_value", "mean_shift")
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    KS_STATISTIC_FIELD_NUMBER: _ClassVar[int]
    Q_VALUE_FIELD_NUMBER: _ClassVar[int]
    MEAN_SHIFT_FIELD_NUMBER: _ClassVar[int]
    dimension: int
    ks_statistic: float
    q_value: float
    mean_shift: float
    def __init__(self, dimension: _Optional[int] = ..., ks_statistic: _Optional[float] = ..., q_value: _Optional[float] = ..., mean_shift: _Optional[float] = ...) -> None: ...

class WindowProfile(_message.Message):
    __slots__ = ("norm_mean", "norm_std", "norm_min", "norm_max", "mean_pairwise_cosine", "effective_rank")
    NORM_MEAN_FIELD_NUMBER: _ClassVar[int]
    NORM_STD_FIELD_NUMBER: _ClassVar[int]
    NORM_MIN_FIELD_NUMBER: _ClassVar[int]
    NORM_MAX_FIELD_NUMBER: _ClassVar[int]
    MEAN_PAIRWISE_COSINE_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_RANK_FIELD_NUMBER: _ClassVar[int]
    norm_mean: float
    norm_std: float
    norm_min: float
    norm_max: float
    mean_pairwise_cosine: float
    effective_rank: float
    def __init__(self, norm_mean: _Optional[float] = ..., norm_std: _Optional[float] = ..., norm_min: _Optional[float] = ..., norm_max: _Optional[float] = ..., mean_pairwise_cosine: _Optional[float] = ..., effective_rank: _Optional[float] = ...) -> None: ...

class ListAnomaliesRequest(_message.Message):
    __slots__ = ("kind", "limit", "space")
    KIND_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    limit: int
    space: str
    def __init__(self, kind: _Optional[str] = ..., limit: _Optional[int] = ..., space: _Optional[str] = ...) -> None: ...

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

class WatchAlertsRequest(_message.Message):
    __slots__ = ("after_id", "event", "space")
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    after_id: str
    event: str
    space: str
    def __init__(self, after_id: _Optional[str] = ..., event: _Optional[str] = ..., space: _Optional[str] = ...) -> None: ...

class WatchAlertsResponse(_message.Message):
    __slots__ = ("alert",)
    ALERT_FIELD_NUMBER: _ClassVar[int]
    alert: Alert
    def __init__(self, alert: _Optional[_Union[Alert, _Mapping]] = ...) -> None: ...

class Alert(_message.Message):
    __slots__ = ("id", "event", "space", "kind", "subject", "reason", "statistics", "at", "explanation", "data_json")
    class StatisticsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STATISTICS_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    event: str
    space: str
    kind: str
    subject: str
    reason: str
    statistics: _containers.ScalarMap[str, float]
    at: float
    explanation: _containers.RepeatedScalarFieldContainer[str]
    data_json: str
    def __init__(self, id: _Optional[str] = ..., event: _Optional[str] = ..., space: _Optional[str] = ..., kind: _Optional[str] = ..., subject: _Optional[str] = ..., reason: _Optional[str] = ..., statistics: _Optional[_Mapping[str, float]] = ..., at: _Optional[float] = ..., explanation: _Optional[_Iterable[str]] = ..., data_json: _Optional[str] = ...) -> None: ...

class ResetReferenceRequest(_message.Message):
    __slots__ = ("space",)
    SPACE_FIELD_NUMBER: _ClassVar[int]
    space: str
    def __init__(self, space: _Optional[str] = ...) -> None: ...

class ResetReferenceResponse(_message.Message):
    __slots__ = ("report",)
    REPORT_FIELD_NUMBER: _ClassVar[int]
    report: DriftReport
    def __init__(self, report: _Optional[_Union[DriftReport, _Mapping]] = ...) -> None: ...
