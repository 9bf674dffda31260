"""The README documents every setting and gives the two set-up commands that CI runs."""

from __future__ import annotations

from pathlib import Path

from agent_containers.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [
        f"AGENT_CONTAINERS_{name.upper()}"
        for name in Settings.model_fields
        if f"| `AGENT_CONTAINERS_{name.upper()}` |" not in readme
    ]
    assert missing == []


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make run " in readme
    assert "make test " in readme
    assert "\nmake test\n" in (ROOT / ".ci" / "run").read_text()
