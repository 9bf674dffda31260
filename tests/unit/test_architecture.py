"""The layering rules, held by reading the imports: api -> services -> (store, upstream)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "agent_containers"


def imports(layer: str) -> dict[str, set[str]]:
    """Every module a layer's files import, by file."""
    found: dict[str, set[str]] = {}
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[str(path.relative_to(PACKAGE))] = names
    return found


def offenders(layer: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path} imports {name}"
        for path, names in imports(layer).items()
        for name in sorted(names)
        if name.startswith(forbidden)
    ]


def test_api_translates_domain_values_and_never_touches_the_store() -> None:
    assert offenders("api", ("agent_containers.store", "sqlalchemy")) == []


def test_services_never_see_rows() -> None:
    assert offenders("services", ("agent_containers.store.models", "agent_containers.api")) == []


def test_domain_does_no_io() -> None:
    forbidden = ("agent_containers.store", "agent_containers.upstream", "agent_containers.api")
    assert offenders("domain", (*forbidden, "sqlalchemy", "grpc", "openai", "asyncio")) == []


def test_every_transaction_is_opened_by_the_unit_of_work() -> None:
    """A write that opened its own transaction could forget to publish its invalidations."""
    opened_elsewhere = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name not in ("unit_of_work.py", "migrations.py")
        and any(call in path.read_text() for call in (".begin()", "sessions()", "AsyncSession("))
    ]
    assert opened_elsewhere == []


def test_no_private_sqlalchemy_state() -> None:
    touched = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "_Connection__" in path.read_text() or "__in_begin" in path.read_text()
    ]
    assert touched == []
