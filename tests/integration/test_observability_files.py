"""deploy/observability: the alert rules pass promtool and their unit tests, and the rules and the
Grafana dashboard name only metrics that a real scrape of the service has."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.integration.conftest import StartService
from tests.integration.test_files import download, upload
from tests.integration.test_resolution import bind, resolve
from tests.support.metrics import run_promtool, scrape

OBSERVABILITY = Path(__file__).resolve().parents[2] / "deploy" / "observability"
ALERTS = OBSERVABILITY / "alerts.yaml"
DASHBOARD = OBSERVABILITY / "grafana-dashboard.json"

# PromQL words that look like metric names but are not.
KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
}
# Grafana's variables, replaced by what Prometheus would be sent.
VARIABLES = {"$__rate_interval": "5m", "$job": ".*"}


def grafana_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            expressions.append(variable["definition"].removeprefix("label_values(").split(",")[0])
    return expressions


def rule_expressions() -> list[str]:
    """Every `expr: |` block of the rules file (the only shape it uses)."""
    blocks = re.findall(r"^(\s+)expr: \|\n((?:\1  .*\n)+)", ALERTS.read_text(), re.MULTILINE)
    assert blocks, "no expressions found"
    return [" ".join(line.strip() for line in block.splitlines()) for _, block in blocks]


def substituted(expression: str) -> str:
    for variable, value in VARIABLES.items():
        expression = expression.replace(variable, value)
    assert "$" not in expression, f"unknown variable in {expression}"
    return expression


def metric_names(expression: str) -> set[str]:
    """The metric names an expression selects."""
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', '""', substituted(expression))  # label values
    stripped = re.sub(r"\{[^}]*\}", " ", stripped)  # matchers
    stripped = re.sub(r"\[[^\]]*\]", " ", stripped)  # ranges
    stripped = re.sub(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", stripped
    )
    names = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?", stripped):
        name, call = match.groups()
        if call is None and name not in KEYWORDS:
            names.add(name)
    return names


def test_the_name_finder_finds_names_and_only_names() -> None:
    found = metric_names(
        'histogram_quantile(0.99, sum by (le, grpc_method) (rate(a_bucket{job=~"$job",x="y z"}'
        "[$__rate_interval]))) / ignoring(le) b_total and on(instance) (c == 1) > bool 0.5"
    )
    assert found == {"a_bucket", "b_total", "c"}


async def test_alert_rules_pass_promtool() -> None:
    code, output = await run_promtool("check", "rules", ALERTS.name, cwd=OBSERVABILITY)
    assert code == 0, output
    assert "SUCCESS: 5 rules found" in output


async def test_alert_rules_unit_tests_pass() -> None:
    code, output = await run_promtool("test", "rules", "alerts.test.yaml", cwd=OBSERVABILITY)
    assert code == 0, output
    assert "SUCCESS" in output


async def test_dashboard_expressions_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses each expression as a recording rule."""
    rules = ["groups:", "  - name: dashboard", "    rules:"]
    for index, expression in enumerate(grafana_expressions()):
        rules += [
            f"      - record: dashboard:expr_{index}",
            f"        expr: {json.dumps(substituted(expression))}",
        ]
    (tmp_path / "dashboard.rules.yaml").write_text("\n".join(rules) + "\n")
    code, output = await run_promtool("check", "rules", "dashboard.rules.yaml", cwd=tmp_path)
    assert code == 0, output


@pytest.mark.parametrize("database_backend", ["sqlite"], indirect=True)
async def test_the_dashboard_and_rules_use_only_metrics_a_scrape_has(
    start_service: StartService,
) -> None:
    service = await start_service()
    container = await service.create("dashboard")
    await bind(service, "agent", container.id)
    await resolve(service, "agent")
    uploaded = await upload(service, container.id, "f.txt", b"content")
    await download(service, container.id, uploaded.id)
    await service.reconcile()
    assert service.server.metrics_port is not None
    found = await scrape(service.server.metrics_port)

    dashboard_names = set().union(*(metric_names(e) for e in grafana_expressions()))
    rule_names = set().union(*(metric_names(e) for e in rule_expressions()))
    assert sorted(dashboard_names - found.names) == []
    assert sorted(rule_names - found.names) == []
    # And the dashboard shows every metric of the service's own and of its gRPC server.
    families = {
        re.sub(r"_(bucket|count|sum)$", "", name)
        if name.endswith(("_bucket", "_count", "_sum"))
        else name
        for name in found.names
        if name.startswith(("agent_containers_", "grpc_server_"))
    }
    shown = {re.sub(r"_bucket$", "", name) for name in dashboard_names}
    assert sorted(families - shown) == []
