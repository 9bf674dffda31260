import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NetworkAccess(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NETWORK_ACCESS_UNSPECIFIED: _ClassVar[NetworkAccess]
    NETWORK_ACCESS_DISABLED: _ClassVar[NetworkAccess]
    NETWORK_ACCESS_ALLOWLIST: _ClassVar[NetworkAccess]

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
NETWORK_ACCESS_UNSPECIFIED: NetworkAccess
NETWORK_ACCESS_DISABLED: NetworkAccess
NETWORK_ACCESS_ALLOWLIST: NetworkAccess
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
    __slots__ = ("id", "openai_container_id", "name", "memory_tier", "expires_after_minutes", "state", "metadata", "owner_user_id", "last_active_time", "expire_time", "refresh_time", "create_time", "update_time", "delete_time", "failure_reason", "initial_file_ids", "network_policy", "skills")
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
    INITIAL_FILE_IDS_FIELD_NUMBER: _ClassVar[int]
    NETWORK_POLICY_FIELD_NUMBER: _ClassVar[int]
    SKILLS_FIELD_NUMBER: _ClassVar[int]
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
    initial_file_ids: _containers.RepeatedScalarFieldContainer[str]
    network_policy: NetworkPolicy
    skills: _containers.RepeatedCompositeFieldContainer[Skill]
    def __init__(self, id: _Optional[str] = ..., openai_container_id: _Optional[str] = ..., name: _Optional[str] = ..., memory_tier: _Optional[_Union[MemoryTier, str]] = ..., expires_after_minutes: _Optional[int] = ..., state: _Optional[_Union[ContainerState, str]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., owner_user_id: _Optional[str] = ..., last_active_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., refresh_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., delete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., failure_reason: _Optional[str] = ..., initial_file_ids: _Optional[_Iterable[str]] = ..., network_policy: _Optional[_Union[NetworkPolicy, _Mapping]] = ..., skills: _Optional[_Iterable[_Union[Skill, _Mapping]]] = ...) -> None: ...

class NetworkPolicy(_message.Message):
    __slots__ = ("access", "allowed_domains", "domain_secrets")
    ACCESS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_DOMAINS_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_SECRETS_FIELD_NUMBER: _ClassVar[int]
    access: NetworkAccess
    allowed_domains: _containers.RepeatedScalarFieldContainer[str]
    domain_secrets: _containers.RepeatedCompositeFieldContainer[DomainSecret]
    def __init__(self, access: _Optional[_Union[NetworkAccess, str]] = ..., allowed_domains: _Optional[_Iterable[str]] = ..., domain_secrets: _Optional[_Iterable[_Union[DomainSecret, _Mapping]]] = ...) -> None: ...

class DomainSecret(_message.Message):
    __slots__ = ("domain", "name", "value")
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    domain: str
    name: str
    value: str
    def __init__(self, domain: _Optional[str] = ..., name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class Skill(_message.Message):
    __slots__ = ("reference", "inline")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    INLINE_FIELD_NUMBER: _ClassVar[int]
    reference: SkillReference
    inline: InlineSkill
    def __init__(self, reference: _Optional[_Union[SkillReference, _Mapping]] = ..., inline: _Optional[_Union[InlineSkill, _Mapping]] = ...) -> None: ...

class SkillReference(_message.Message):
    __slots__ = ("skill_id", "version")
    SKILL_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    skill_id: str
    version: str
    def __init__(self, skill_id: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class InlineSkill(_message.Message):
    __slots__ = ("name", "description", "zip", "zip_size_bytes", "zip_sha256")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ZIP_FIELD_NUMBER: _ClassVar[int]
    ZIP_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    ZIP_SHA256_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    zip: bytes
    zip_size_bytes: int
    zip_sha256: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., zip: _Optional[bytes] = ..., zip_size_bytes: _Optional[int] = ..., zip_sha256: _Optional[str] = ...) -> None: ...

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
