"""Reading a server's /metrics as Prometheus would, and promtool."""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Scrape:
    """One scrape: its text, and every sample by name and labels."""

    text: str
    samples: dict[tuple[str, Labels], float]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        return cls(text, samples)

    @property
    def names(self) -> set[str]:
        """Every sample name (a histogram's `_bucket`, `_sum` and `_count` included)."""
        return {name for name, _ in self.samples}

    def value(self, name: str, **labels: str) -> float:
        """The sample with exactly these labels; 0 when there is none."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """The sum of the samples whose labels include these."""
        wanted = set(labels.items())
        return sum(
            value
            for (sample, sample_labels), value in self.samples.items()
            if sample == name and wanted <= sample_labels
        )

    def labels_of(self, name: str) -> list[dict[str, str]]:
        return [dict(labels) for sample, labels in self.samples if sample == name]


async def fetch_metrics(port: int, *, accept: str | None = None) -> httpx2.Response:
    headers = {"Accept": accept} if accept else {}
    async with httpx2.AsyncClient(timeout=10) as client:
        return await client.get(f"http://127.0.0.1:{port}/metrics", headers=headers)


async def scrape(port: int) -> Scrape:
    """The endpoint's text format, parsed."""
    response = await fetch_metrics(port)
    assert response.status_code == 200, response.text
    return Scrape.parse(response.text)


def promtool() -> str:
    """The `promtool` executable; skip when it is missing (fail when CI is set)."""
    found = shutil.which("promtool")
    if found is not None:
        return found
    reason = "promtool is not on PATH; install Debian's `prometheus` package"
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is an error)", pytrace=False)
    pytest.skip(reason)


async def run_promtool(*args: str, stdin: bytes = b"", cwd: Path | None = None) -> tuple[int, str]:
    """promtool's exit code and everything it wrote."""
    process = await asyncio.create_subprocess_exec(
        promtool(),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=cwd,
    )
    output, _ = await process.communicate(stdin)
    assert process.returncode is not None
    return process.returncode, output.decode()
