"""Agent bindings: an agent runs its code interpreter in the container it is bound to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from agent_containers.domain.containers import Container


@dataclass(frozen=True)
class AgentBinding:
    """One agent's binding, with the container it points at (as last known)."""

    agent_key: str
    container: Container
    created_at: datetime
    updated_at: datetime
