from agentcontainers.v1 import container_pb2 as _container_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateContainerRequest(_message.Message):
    __slots__ = ("container", "request_id", "file_ids")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    FILE_IDS_FIELD_NUMBER: _ClassVar[int]
    container: _container_pb2.Container
    request_id: str
    file_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, container: _Optional[_Union[_container_pb2.Container, _Mapping]] = ..., request_id: _Optional[str] = ..., file_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetContainerRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListContainersRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "state", "show_deleted")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SHOW_DELETED_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    state: _container_pb2.ContainerState
    show_deleted: bool
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[_container_pb2.ContainerState, str]] = ..., show_deleted: _Optional[bool] = ...) -> None: ...

class ListContainersResponse(_message.Message):
    __slots__ = ("containers", "next_page_token")
    CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    containers: _containers.RepeatedCompositeFieldContainer[_container_pb2.Container]
    next_page_token: str
    def __init__(self, containers: _Optional[_Iterable[_Union[_container_pb2.Container, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteContainerRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class UploadContainerFileRequest(_message.Message):
    __slots__ = ("container_id", "filename", "openai_file_id", "content")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    OPENAI_FILE_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    filename: str
    openai_file_id: str
    content: _httpbody_pb2.HttpBody
    def __init__(self, container_id: _Optional[str] = ..., filename: _Optional[str] = ..., openai_file_id: _Optional[str] = ..., content: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ...) -> None: ...

class DownloadContainerFileRequest(_message.Message):
    __slots__ = ("container_id", "file_id")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    file_id: str
    def __init__(self, container_id: _Optional[str] = ..., file_id: _Optional[str] = ...) -> None: ...

class ListContainerFilesRequest(_message.Message):
    __slots__ = ("container_id", "page_size", "page_token")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    page_size: int
    page_token: str
    def __init__(self, container_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListContainerFilesResponse(_message.Message):
    __slots__ = ("files", "next_page_token")
    FILES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[_container_pb2.ContainerFile]
    next_page_token: str
    def __init__(self, files: _Optional[_Iterable[_Union[_container_pb2.ContainerFile, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetContainerFileRequest(_message.Message):
    __slots__ = ("container_id", "file_id")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    file_id: str
    def __init__(self, container_id: _Optional[str] = ..., file_id: _Optional[str] = ...) -> None: ...

class DeleteContainerFileRequest(_message.Message):
    __slots__ = ("container_id", "file_id")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    file_id: str
    def __init__(self, container_id: _Optional[str] = ..., file_id: _Optional[str] = ...) -> None: ...

class DeleteContainerFileResponse(_message.Message):
    __slots__ = ("file_id",)
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    file_id: str
    def __init__(self, file_id: _Optional[str] = ...) -> None: ...
