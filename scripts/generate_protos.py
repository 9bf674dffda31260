"""Regenerates generated/agentcontainers/v1 from protos/ (the `make protos` target).

With --check DIR it writes into DIR instead, so a test can compare the result with what is
committed.
"""

from __future__ import annotations

import argparse
import sys
from importlib.resources import files
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = ROOT / "protos"
GOOGLEAPIS = ROOT / "third_party" / "googleapis"
PACKAGE_DIRS = ("agentcontainers", "agentcontainers/v1")
INIT_TEXT = '"""Generated from protos/ by `make protos`; do not edit."""\n'


def generate(out_dir: Path) -> None:
    """Runs protoc over every .proto in protos/ and writes Python, stubs and gRPC code."""
    out_dir.mkdir(parents=True, exist_ok=True)
    well_known = str(files("grpc_tools") / "_proto")
    sources = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    args = [
        "grpc_tools.protoc",
        f"--proto_path={PROTO_ROOT}",
        f"--proto_path={GOOGLEAPIS}",
        f"--proto_path={well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for package in PACKAGE_DIRS:
        (out_dir / package / "__init__.py").write_text(INIT_TEXT)
        (out_dir / package / "py.typed").write_text("")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "generated")
    options = parser.parse_args()
    generate(options.out)
    print(f"generated into {options.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
