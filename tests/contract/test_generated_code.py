"""The committed generated/ code is exactly what protos/ produces."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tree(root: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(root)): p
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_generated_code_matches_protos(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate_protos.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    fresh, committed = _tree(tmp_path), _tree(ROOT / "generated")
    assert sorted(fresh) == sorted(committed), "files differ: run `make protos` and commit"
    stale = [name for name in fresh if not filecmp.cmp(fresh[name], committed[name], shallow=False)]
    assert stale == [], f"stale generated files (run `make protos` and commit): {stale}"


def test_generated_package_imports_without_path_hacks() -> None:
    from agentcontainers.v1 import container_service_pb2, container_service_pb2_grpc

    assert container_service_pb2.DESCRIPTOR.package == "agentcontainers.v1"
    assert hasattr(container_service_pb2_grpc, "ContainerServiceStub")
