"""A gateway generator accepts the whole contract and serves every HTTP rule in it.

protoc runs Debian's grpc-gateway plugins (package golang-grpc-gateway: protoc-gen-grpc-gateway
and protoc-gen-swagger, v1.6.4) over every proto in protos/. They refuse a contract that no
gateway can serve, for example a path parameter in a client-streaming rule. Building and running
the gateway itself is not done here.

Without protoc or the plugins the tests are skipped; when ``CI`` is set they install them with
apt-get instead, and fail saying so if that fails (CI must not go green by skipping).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from google.api import annotations_pb2

ROOT = Path(__file__).resolve().parents[2]
PROTOS = ROOT / "protos"
GOOGLEAPIS = ROOT / "third_party" / "googleapis"
TOOLS = ("protoc", "protoc-gen-grpc-gateway", "protoc-gen-swagger")
APT_PACKAGES = ("golang-grpc-gateway", "protobuf-compiler")
INSTALL_HINT = f"apt-get install -y {' '.join(APT_PACKAGES)}"

# Under CI the first test's fixture may install the tools with apt-get first.
pytestmark = pytest.mark.timeout(600)

# The file RPCs' routes: none binds a path parameter in the client-streaming upload.
FILE_ROUTES = {
    "UploadContainerFile": ("post", "/v1/containerFiles:upload"),
    "DownloadContainerFile": ("get", "/v1/containers/{container_id}/files/{file_id}:download"),
    "ListContainerFiles": ("get", "/v1/containers/{container_id}/files"),
    "GetContainerFile": ("get", "/v1/containers/{container_id}/files/{file_id}"),
    "DeleteContainerFile": ("delete", "/v1/containers/{container_id}/files/{file_id}"),
}


def _missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def _apt_get(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(
        ["apt-get", *args], capture_output=True, text=True, env=environment, check=False
    )


def _install_tools() -> str:
    """Installs the tools with apt-get (updating the package lists only when the install alone
    fails); returns what went wrong, or '' when it worked."""
    if shutil.which("apt-get") is None:
        return "apt-get is not on PATH"
    install = ("install", "-y", "-q", *APT_PACKAGES)
    if _apt_get(*install).returncode == 0:
        return ""
    update = _apt_get("update", "-q")
    if update.returncode != 0:
        return f"`apt-get update` failed: {update.stderr.strip()[-500:]}"
    retry = _apt_get(*install)
    if retry.returncode != 0:
        return f"`apt-get {' '.join(install)}` failed: {retry.stderr.strip()[-500:]}"
    return ""


def _well_known_include(protoc: str) -> Path:
    """The directory holding google/protobuf/*.proto: protoc's own (/usr/include for Debian's
    protoc), else the copy grpcio-tools ships."""
    beside_protoc = Path(protoc).resolve().parent.parent / "include"
    if (beside_protoc / "google" / "protobuf" / "any.proto").is_file():
        return beside_protoc
    return Path(str(files("grpc_tools") / "_proto"))


@dataclass(frozen=True)
class Generated:
    """What protoc produced: its command line, result and output directory."""

    command: list[str]
    result: subprocess.CompletedProcess[str]
    out: Path

    def gateway(self, proto: str) -> str:
        return (self.out / proto.replace(".proto", ".pb.gw.go")).read_text()

    def swagger(self, proto: str) -> Any:
        return json.loads((self.out / proto.replace(".proto", ".swagger.json")).read_text())


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    """protoc with both plugins over every proto in protos/, into a fresh directory."""
    missing = _missing_tools()
    if missing:
        if not os.environ.get("CI"):
            pytest.skip(f"{', '.join(missing)} not on PATH (install with `{INSTALL_HINT}`)")
        problem = _install_tools()
        missing = _missing_tools()
        if missing:
            pytest.fail(
                f"CI is set and these are not on PATH: {', '.join(missing)}; installing "
                f"{' and '.join(APT_PACKAGES)} with apt-get did not help "
                f"({problem or 'it reported success'}). Run `{INSTALL_HINT}` before the suite "
                "(.ci/run does).",
                pytrace=False,
            )
    paths = {tool: str(shutil.which(tool)) for tool in TOOLS}
    out = tmp_path_factory.mktemp("gateway")
    sources = sorted(path.relative_to(PROTOS).as_posix() for path in PROTOS.rglob("*.proto"))
    command = [
        paths["protoc"],
        f"--proto_path={PROTOS}",
        f"--proto_path={GOOGLEAPIS}",
        f"--proto_path={_well_known_include(paths['protoc'])}",
        f"--plugin=protoc-gen-grpc-gateway={paths['protoc-gen-grpc-gateway']}",
        f"--plugin=protoc-gen-swagger={paths['protoc-gen-swagger']}",
        f"--grpc-gateway_out=logtostderr=true:{out}",
        f"--swagger_out=logtostderr=true:{out}",
        *sources,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    return Generated(command, result, out)


def _http_rules() -> list[tuple[str, str, str, str, str]]:
    """(proto file, service, method, verb, path) of every RPC with a google.api.http rule,
    read from the generated Python descriptors."""
    rules = []
    for proto in sorted(PROTOS.rglob("*.proto")):
        relative = proto.relative_to(PROTOS)
        module_name = ".".join((*relative.parent.parts, f"{relative.stem}_pb2"))
        descriptor = importlib.import_module(module_name).DESCRIPTOR
        for service in descriptor.services_by_name.values():
            for method in service.methods:
                rule = method.GetOptions().Extensions[annotations_pb2.http]
                verb = rule.WhichOneof("pattern")
                if verb is None:
                    continue
                path = getattr(rule, verb)
                rules.append((relative.as_posix(), service.name, method.name, verb, path))
    return rules


def test_the_generators_accept_every_proto(generated: Generated) -> None:
    assert generated.result.returncode == 0, (
        f"{shlex.join(generated.command)}\n{generated.result.stderr}"
    )
    service_files = {proto for proto, *_ in _http_rules()}
    assert service_files, "no RPC has a google.api.http rule"
    for proto in service_files:
        assert (generated.out / proto.replace(".proto", ".pb.gw.go")).is_file(), proto
        assert (generated.out / proto.replace(".proto", ".swagger.json")).is_file(), proto


def test_every_http_rule_becomes_a_gateway_handler_and_a_swagger_path(
    generated: Generated,
) -> None:
    assert generated.result.returncode == 0, generated.result.stderr
    for proto, service, method, verb, path in _http_rules():
        gateway = generated.gateway(proto)
        handle = f'mux.Handle("{verb.upper()}", pattern_{service}_{method}_0,'
        assert handle in gateway, f"{service}.{method}: no gateway handler"
        operation = generated.swagger(proto)["paths"].get(path, {}).get(verb)
        assert operation is not None, f"{service}.{method}: {verb.upper()} {path} not in swagger"
        assert operation["operationId"] in (method, f"{service}_{method}")


def test_the_file_routes_are_served(generated: Generated) -> None:
    """Upload without path parameters; download as raw bytes (google.api.HttpBody)."""
    assert generated.result.returncode == 0, generated.result.stderr
    proto = "agentcontainers/v1/container_service.proto"
    rules = {method: (verb, path) for _, _, method, verb, path in _http_rules()}
    assert {rpc: rules.get(rpc) for rpc in FILE_ROUTES} == FILE_ROUTES

    gateway = generated.gateway(proto)
    for rpc, (verb, _) in FILE_ROUTES.items():
        assert f'mux.Handle("{verb.upper()}", pattern_ContainerService_{rpc}_0,' in gateway
    upload_pattern = re.search(r"pattern_ContainerService_UploadContainerFile_0 = (.*)", gateway)
    assert upload_pattern is not None
    assert '[]string{"v1", "containerFiles"}, "upload"' in upload_pattern.group(1)
    download_pattern = re.search(
        r"pattern_ContainerService_DownloadContainerFile_0 = (.*)", gateway
    )
    assert download_pattern is not None
    assert '"container_id", "files", "file_id"}, "download"' in download_pattern.group(1)

    paths = generated.swagger(proto)["paths"]
    for rpc, (verb, path) in FILE_ROUTES.items():
        assert verb in paths.get(path, {}), f"{rpc}: {verb.upper()} {path} not in swagger"
    upload = paths["/v1/containerFiles:upload"]["post"]
    assert [p["in"] for p in upload["parameters"]] == ["body"], "upload binds no path parameter"
    assert upload["parameters"][0]["schema"] == {"$ref": "#/definitions/apiHttpBody"}
    download = paths["/v1/containers/{container_id}/files/{file_id}:download"]["get"]
    assert download["responses"]["200"]["schema"] == {"$ref": "#/definitions/apiHttpBody"}
    assert {p["name"] for p in download["parameters"] if p["in"] == "path"} == {
        "container_id",
        "file_id",
    }
