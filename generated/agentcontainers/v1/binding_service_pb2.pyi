import datetime

from agentcontainers.v1 import container_pb2 as _container_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgentBinding(_message.Message):
    __slots__ = ("agent_key", "container_id", "openai_container_id", "container_state", "container_expire_time", "create_time", "update_time")
    AGENT_KEY_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    OPENAI_CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_STATE_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    agent_key: str
    container_id: str
    openai_container_id: str
    container_state: _container_pb2.ContainerState
    container_expire_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, agent_key: _Optional[str] = ..., container_id: _Optional[str] = ..., openai_container_id: _Optional[str] = ..., container_state: _Optional[_Union[_container_pb2.ContainerState, str]] = ..., container_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class BindContainerRequest(_message.Message):
    __slots__ = ("agent_key", "container_id")
    AGENT_KEY_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    agent_key: str
    container_id: str
    def __init__(self, agent_key: _Optional[str] = ..., container_id: _Optional[str] = ...) -> None: ...

class UnbindContainerRequest(_message.Message):
    __slots__ = ("agent_key",)
    AGENT_KEY_FIELD_NUMBER: _ClassVar[int]
    agent_key: str
    def __init__(self, agent_key: _Optional[str] = ...) -> None: ...

class GetAgentBindingRequest(_message.Message):
    __slots__ = ("agent_key",)
    AGENT_KEY_FIELD_NUMBER: _ClassVar[int]
    agent_key: str
    def __init__(self, agent_key: _Optional[str] = ...) -> None: ...

class ListAgentBindingsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "container_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    container_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., container_id: _Optional[str] = ...) -> None: ...

class ListAgentBindingsResponse(_message.Message):
    __slots__ = ("bindings", "next_page_token")
    BINDINGS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    bindings: _containers.RepeatedCompositeFieldContainer[AgentBinding]
    next_page_token: str
    def __init__(self, bindings: _Optional[_Iterable[_Union[AgentBinding, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
