from recsys.shared.api import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SimilarItemsRequest(_message.Message):
    __slots__ = ("item_id", "limit", "filter", "exclude_item_ids")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    limit: int
    filter: _common_pb2.ItemFilter
    exclude_item_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, item_id: _Optional[str] = ..., limit: _Optional[int] = ..., filter: _Optional[_Union[_common_pb2.ItemFilter, _Mapping]] = ..., exclude_item_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ForYouRequest(_message.Message):
    __slots__ = ("user_id", "limit", "filter", "exclude_item_ids")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    limit: int
    filter: _common_pb2.ItemFilter
    exclude_item_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_id: _Optional[str] = ..., limit: _Optional[int] = ..., filter: _Optional[_Union[_common_pb2.ItemFilter, _Mapping]] = ..., exclude_item_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SearchItemsRequest(_message.Message):
    __slots__ = ("text", "limit", "filter", "exclude_item_ids")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    text: str
    limit: int
    filter: _common_pb2.ItemFilter
    exclude_item_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, text: _Optional[str] = ..., limit: _Optional[int] = ..., filter: _Optional[_Union[_common_pb2.ItemFilter, _Mapping]] = ..., exclude_item_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SimilarItemsResponse(_message.Message):
    __slots__ = ("items", "strategy")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[_common_pb2.ScoredItem]
    strategy: str
    def __init__(self, items: _Optional[_Iterable[_Union[_common_pb2.ScoredItem, _Mapping]]] = ..., strategy: _Optional[str] = ...) -> None: ...

class ForYouResponse(_message.Message):
    __slots__ = ("items", "strategy")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[_common_pb2.ScoredItem]
    strategy: str
    def __init__(self, items: _Optional[_Iterable[_Union[_common_pb2.ScoredItem, _Mapping]]] = ..., strategy: _Optional[str] = ...) -> None: ...

class SearchItemsResponse(_message.Message):
    __slots__ = ("items", "strategy")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[_common_pb2.ScoredItem]
    strategy: str
    def __init__(self, items: _Optional[_Iterable[_Union[_common_pb2.ScoredItem, _Mapping]]] = ..., strategy: _Optional[str] = ...) -> None: ...
