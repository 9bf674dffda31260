import datetime

from agentcontainers.v1 import binding_service_pb2 as _binding_service_pb2
from agentcontainers.v1 import container_pb2 as _container_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ToolMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOOL_MODE_UNSPECIFIED: _ClassVar[ToolMode]
    TOOL_MODE_AUTO: _ClassVar[ToolMode]
    TOOL_MODE_EXPLICIT: _ClassVar[ToolMode]

class ToolSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOOL_SOURCE_UNSPECIFIED: _ClassVar[ToolSource]
    TOOL_SOURCE_OVERRIDE: _ClassVar[ToolSource]
    TOOL_SOURCE_SPEC: _ClassVar[ToolSource]
    TOOL_SOURCE_BINDING: _ClassVar[ToolSource]
    TOOL_SOURCE_AUTO: _ClassVar[ToolSource]

class FallbackReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FALLBACK_REASON_UNSPECIFIED: _ClassVar[FallbackReason]
    FALLBACK_REASON_NO_BINDING: _ClassVar[FallbackReason]
    FALLBACK_REASON_CONTAINER_NOT_FOUND: _ClassVar[FallbackReason]
    FALLBACK_REASON_CONTAINER_EXPIRED: _ClassVar[FallbackReason]
    FALLBACK_REASON_CONTAINER_EXPIRING: _ClassVar[FallbackReason]
    FALLBACK_REASON_CONTAINER_NOT_RUNNING: _ClassVar[FallbackReason]
TOOL_MODE_UNSPECIFIED: ToolMode
TOOL_MODE_AUTO: ToolMode
TOOL_MODE_EXPLICIT: ToolMode
TOOL_SOURCE_UNSPECIFIED: ToolSource
TOOL_SOURCE_OVERRIDE: ToolSource
TOOL_SOURCE_SPEC: ToolSource
TOOL_SOURCE_BINDING: ToolSource
TOOL_SOURCE_AUTO: ToolSource
FALLBACK_REASON_UNSPECIFIED: FallbackReason
FALLBACK_REASON_NO_BINDING: FallbackReason
FALLBACK_REASON_CONTAINER_NOT_FOUND: FallbackReason
FALLBACK_REASON_CONTAINER_EXPIRED: FallbackReason
FALLBACK_REASON_CONTAINER_EXPIRING: FallbackReason
FALLBACK_REASON_CONTAINER_NOT_RUNNING: FallbackReason

class CodeInterpreterConfig(_message.Message):
    __slots__ = ("mode", "memory_tier", "file_ids", "container_id")
    MODE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TIER_FIELD_NUMBER: _ClassVar[int]
    FILE_IDS_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    mode: ToolMode
    memory_tier: _container_pb2.MemoryTier
    file_ids: _containers.RepeatedScalarFieldContainer[str]
    container_id: str
    def __init__(self, mode: _Optional[_Union[ToolMode, str]] = ..., memory_tier: _Optional[_Union[_container_pb2.MemoryTier, str]] = ..., file_ids: _Optional[_Iterable[str]] = ..., container_id: _Optional[str] = ...) -> None: ...

class ResolveToolRequest(_message.Message):
    __slots__ = ("agent_key", "tool", "config", "container_override")
    AGENT_KEY_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_OVERRIDE_FIELD_NUMBER: _ClassVar[int]
    agent_key: str
    tool: str
    config: CodeInterpreterConfig
    container_override: str
    def __init__(self, agent_key: _Optional[str] = ..., tool: _Optional[str] = ..., config: _Optional[_Union[CodeInterpreterConfig, _Mapping]] = ..., container_override: _Optional[str] = ...) -> None: ...

class ResolvedTool(_message.Message):
    __slots__ = ("tool", "mode", "source", "container_id", "openai_container_id", "container_expire_time", "fallback_reason", "fallback_detail", "tool_json", "tool_struct")
    TOOL_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    OPENAI_CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_REASON_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_DETAIL_FIELD_NUMBER: _ClassVar[int]
    TOOL_JSON_FIELD_NUMBER: _ClassVar[int]
    TOOL_STRUCT_FIELD_NUMBER: _ClassVar[int]
    tool: str
    mode: ToolMode
    source: ToolSource
    container_id: str
    openai_container_id: str
    container_expire_time: _timestamp_pb2.Timestamp
    fallback_reason: FallbackReason
    fallback_detail: str
    tool_json: str
    tool_struct: _struct_pb2.Struct
    def __init__(self, tool: _Optional[str] = ..., mode: _Optional[_Union[ToolMode, str]] = ..., source: _Optional[_Union[ToolSource, str]] = ..., container_id: _Optional[str] = ..., openai_container_id: _Optional[str] = ..., container_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., fallback_reason: _Optional[_Union[FallbackReason, str]] = ..., fallback_detail: _Optional[str] = ..., tool_json: _Optional[str] = ..., tool_struct: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class AgentToolSpec(_message.Message):
    __slots__ = ("tool", "code_interpreter")
    TOOL_FIELD_NUMBER: _ClassVar[int]
    CODE_INTERPRETER_FIELD_NUMBER: _ClassVar[int]
    tool: str
    code_interpreter: CodeInterpreterConfig
    def __init__(self, tool: _Optional[str] = ..., code_interpreter: _Optional[_Union[CodeInterpreterConfig, _Mapping]] = ...) -> None: ...

class AgentSpec(_message.Message):
    __slots__ = ("tools",)
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    tools: _containers.RepeatedCompositeFieldContainer[AgentToolSpec]
    def __init__(self, tools: _Optional[_Iterable[_Union[AgentToolSpec, _Mapping]]] = ...) -> None: ...

class BatchResolveToolsRequest(_message.Message):
    __slots__ = ("agent_key", "spec", "container_override")
    AGENT_KEY_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_OVERRIDE_FIELD_NUMBER: _ClassVar[int]
    agent_key: str
    spec: AgentSpec
    container_override: str
    def __init__(self, agent_key: _Optional[str] = ..., spec: _Optional[_Union[AgentSpec, _Mapping]] = ..., container_override: _Optional[str] = ...) -> None: ...

class BatchResolveToolsResponse(_message.Message):
    __slots__ = ("tools",)
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    tools: _containers.RepeatedCompositeFieldContainer[ResolvedTool]
    def __init__(self, tools: _Optional[_Iterable[_Union[ResolvedTool, _Mapping]]] = ...) -> None: ...

class ValidateAgentSpecRequest(_message.Message):
    __slots__ = ("agent_key", "spec")
    AGENT_KEY_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    agent_key: str
    spec: AgentSpec
    def __init__(self, agent_key: _Optional[str] = ..., spec: _Optional[_Union[AgentSpec, _Mapping]] = ...) -> None: ...

class ValidateAgentSpecResponse(_message.Message):
    __slots__ = ("tools",)
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    tools: _containers.RepeatedCompositeFieldContainer[ResolvedTool]
    def __init__(self, tools: _Optional[_Iterable[_Union[ResolvedTool, _Mapping]]] = ...) -> None: ...

class ListToolsRequest(_message.Message):
    __slots__ = ("agent_key",)
    AGENT_KEY_FIELD_NUMBER: _ClassVar[int]
    agent_key: str
    def __init__(self, agent_key: _Optional[str] = ...) -> None: ...

class ListToolsResponse(_message.Message):
    __slots__ = ("tools",)
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    tools: _containers.RepeatedCompositeFieldContainer[ToolDescription]
    def __init__(self, tools: _Optional[_Iterable[_Union[ToolDescription, _Mapping]]] = ...) -> None: ...

class ToolDescription(_message.Message):
    __slots__ = ("name", "available", "modes", "binding", "binding_live")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    MODES_FIELD_NUMBER: _ClassVar[int]
    BINDING_FIELD_NUMBER: _ClassVar[int]
    BINDING_LIVE_FIELD_NUMBER: _ClassVar[int]
    name: str
    available: bool
    modes: _containers.RepeatedScalarFieldContainer[ToolMode]
    binding: _binding_service_pb2.AgentBinding
    binding_live: bool
    def __init__(self, name: _Optional[str] = ..., available: _Optional[bool] = ..., modes: _Optional[_Iterable[_Union[ToolMode, str]]] = ..., binding: _Optional[_Union[_binding_service_pb2.AgentBinding, _Mapping]] = ..., binding_live: _Optional[bool] = ...) -> None: ...
