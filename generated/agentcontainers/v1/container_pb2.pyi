import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ContainerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTAINER_STATE_UNSPECIFIED: _ClassVar[ContainerState]
    CONTAINER_STATE_CREATING: _ClassVar[ContainerState]
    CONTAINER_STATE_RUNNING: _ClassVar[ContainerState]
    CONTAINER_STATE_EXPIRED: _ClassVar[ContainerState]
    CONTAINER_STATE_DELETED: _ClassVar[ContainerState]
    CONTAINER_STATE_FAILED: _ClassVar[ContainerState]

class MemoryTier(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEMORY_TIER_UNSPECIFIED: _ClassVar[MemoryTier]
    MEMORY_TIER_1G: _ClassVar[MemoryTier]
    MEMORY_TIER_4G: _ClassVar[MemoryTier]
    MEMORY_TIER_16G: _ClassVar[MemoryTier]
    MEMORY_TIER_64G: _ClassVar[MemoryTier]

class ContainerFileSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTAINER_FILE_SOURCE_UNSPECIFIED: _ClassVar[ContainerFileSource]
    CONTAINER_FILE_SOURCE_USER: _ClassVar[ContainerFileSource]
    CONTAINER_FILE_SOURCE_ASSISTANT: _ClassVar[ContainerFileSource]
CONTAINER_STATE_UNSPECIFIED: ContainerState
CONTAINER_STATE_CREATING: ContainerState
CONTAINER_STATE_RUNNING: ContainerState
CONTAINER_STATE_EXPIRED: ContainerState
CONTAINER_STATE_DELETED: ContainerState
CONTAINER_STATE_FAILED: ContainerState
MEMORY_TIER_UNSPECIFIED: MemoryTier
MEMORY_TIER_1G: MemoryTier
MEMORY_TIER_4G: MemoryTier
MEMORY_TIER_16G: MemoryTier
MEMORY_TIER_64G: MemoryTier
CONTAINER_FILE_SOURCE_UNSPECIFIED: ContainerFileSource
CONTAINER_FILE_SOURCE_USER: ContainerFileSource
CONTAINER_FILE_SOURCE_ASSISTANT: ContainerFileSource

class Container(_message.Message):
    __slots__ = ("id", "openai_container_id", "name", "memory_tier", "expires_after_minutes", "state", "metadata", "owner_user_id", "last_active_time", "expire_time", "refresh_time", "create_time", "update_time", "delete_time", "failure_reason")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    OPENAI_CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TIER_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AFTER_MINUTES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    OWNER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_ACTIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    REFRESH_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DELETE_TIME_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    openai_container_id: str
    name: str
    memory_tier: MemoryTier
    expires_after_minutes: int
    state: ContainerState
    metadata: _containers.ScalarMap[str, str]
    owner_user_id: str
    last_active_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    refresh_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    delete_time: _timestamp_pb2.Timestamp
    failure_reason: str
    def __init__(self, id: _Optional[str] = ..., openai_container_id: _Optional[str] = ..., name: _Optional[str] = ..., memory_tier: _Optional[_Union[MemoryTier, str]] = ..., expires_after_minutes: _Optional[int] = ..., state: _Optional[_Union[ContainerState, str]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., owner_user_id: _Optional[str] = ..., last_active_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., refresh_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., delete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., failure_reason: _Optional[str] = ...) -> None: ...

class ContainerFile(_message.Message):
    __slots__ = ("id", "container_id", "path", "size_bytes", "source", "create_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    container_id: str
    path: str
    size_bytes: int
    source: ContainerFileSource
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., container_id: _Optional[str] = ..., path: _Optional[str] = ..., size_bytes: _Optional[int] = ..., source: _Optional[_Union[ContainerFileSource, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
