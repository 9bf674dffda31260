"""What a container may be created with beyond its name and tier: a network policy and skills.

Pure types and rules. Secret values and skill bundles travel to upstream only: what the service
keeps (store/containers.py) and shows carries neither.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from agent_containers.domain.errors import FieldViolation

MAX_ALLOWED_DOMAINS = 64
MAX_DOMAIN_SECRETS = 64
MAX_SECRET_VALUE_CHARS = 65_536
MAX_SKILLS = 16
MAX_SKILL_NAME_CHARS = 64
MAX_SKILL_DESCRIPTION_CHARS = 1024
# A hostname: labels of letters, digits and inner hyphens, lower case, at most 253 characters.
DOMAIN_PATTERN = re.compile(
    r"(?=.{1,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
)
SECRET_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
SKILL_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
SKILL_VERSION_PATTERN = re.compile(r"latest|[1-9][0-9]{0,9}")
ZIP_MAGIC = b"PK\x03\x04"


class NetworkAccess(StrEnum):
    """Whether a container may reach the network (upstream's `network_policy.type`)."""

    DISABLED = "disabled"
    ALLOWLIST = "allowlist"


@dataclass(frozen=True)
class DomainSecret:
    """A secret upstream injects for one domain; the value is empty once recorded."""

    domain: str
    name: str
    value: str = field(default="", repr=False)


@dataclass(frozen=True)
class NetworkPolicy:
    """Disabled, or an allowlist of domains with optional per-domain secrets."""

    access: NetworkAccess = NetworkAccess.DISABLED
    allowed_domains: tuple[str, ...] = ()
    secrets: tuple[DomainSecret, ...] = ()


DISABLED = NetworkPolicy()


@dataclass(frozen=True)
class SkillReference:
    """A skill created with OpenAI's skills API."""

    skill_id: str
    version: str = ""


@dataclass(frozen=True)
class InlineSkill:
    """A skill sent with the request as a zip bundle; the bundle is empty once recorded."""

    name: str
    description: str
    bundle: bytes = field(default=b"", repr=False)
    size_bytes: int = 0
    sha256: str = ""

    @classmethod
    def sent(cls, name: str, description: str, bundle: bytes) -> InlineSkill:
        digest = hashlib.sha256(bundle).hexdigest()
        return cls(name, description, bundle, len(bundle), digest)


Skill = SkillReference | InlineSkill


def domain_allowed(domain: str, patterns: Sequence[str]) -> bool:
    """Whether a domain is within the operator's bound: `example.com` allows exactly it,
    `*.example.com` its subdomains, `*` anything."""
    for pattern in patterns:
        if pattern == "*" or pattern == domain:
            return True
        if pattern.startswith("*.") and domain.endswith(pattern[1:]):
            return True
    return False


def network_policy_violations(
    policy: NetworkPolicy, permitted: Sequence[str], prefix: str
) -> list[FieldViolation]:
    """Every problem with a requested policy, against the domains the server permits."""
    violations: list[FieldViolation] = []
    domains_field = f"{prefix}.allowed_domains"
    if policy.access is NetworkAccess.DISABLED:
        if policy.allowed_domains or policy.secrets:
            violations.append(
                FieldViolation(prefix, "domains and secrets need access NETWORK_ACCESS_ALLOWLIST")
            )
        return violations
    if not policy.allowed_domains:
        violations.append(FieldViolation(domains_field, "an allowlist needs at least one domain"))
    if len(policy.allowed_domains) > MAX_ALLOWED_DOMAINS:
        violations.append(FieldViolation(domains_field, f"at most {MAX_ALLOWED_DOMAINS} domains"))
    for index, domain in enumerate(policy.allowed_domains[:MAX_ALLOWED_DOMAINS]):
        where = f"{domains_field}[{index}]"
        if not DOMAIN_PATTERN.fullmatch(domain):
            violations.append(FieldViolation(where, "must be a lower-case host name"))
        elif not domain_allowed(domain, permitted):
            violations.append(
                FieldViolation(where, "not allowed here (AGENT_CONTAINERS_ALLOWED_NETWORK_DOMAINS)")
            )
    if len(set(policy.allowed_domains)) != len(policy.allowed_domains):
        violations.append(FieldViolation(domains_field, "domains must not repeat"))
    secrets_field = f"{prefix}.domain_secrets"
    if len(policy.secrets) > MAX_DOMAIN_SECRETS:
        violations.append(FieldViolation(secrets_field, f"at most {MAX_DOMAIN_SECRETS} secrets"))
    for index, secret in enumerate(policy.secrets[:MAX_DOMAIN_SECRETS]):
        where = f"{secrets_field}[{index}]"
        if secret.domain not in policy.allowed_domains:
            violations.append(FieldViolation(f"{where}.domain", "must be an allowed domain"))
        if not SECRET_NAME_PATTERN.fullmatch(secret.name):
            violations.append(
                FieldViolation(
                    f"{where}.name", "a letter or '_', then letters, digits and '_' (at most 64)"
                )
            )
        if not 1 <= len(secret.value) <= MAX_SECRET_VALUE_CHARS:
            violations.append(
                FieldViolation(f"{where}.value", f"1 to {MAX_SECRET_VALUE_CHARS} characters")
            )
    if len({(s.domain, s.name) for s in policy.secrets}) != len(policy.secrets):
        violations.append(FieldViolation(secrets_field, "a name must not repeat for a domain"))
    return violations


def skill_violations(skills: Sequence[Skill], prefix: str) -> list[FieldViolation]:
    """Every problem with the requested skills."""
    violations: list[FieldViolation] = []
    if len(skills) > MAX_SKILLS:
        violations.append(FieldViolation(prefix, f"at most {MAX_SKILLS} skills"))
    for index, skill in enumerate(skills[:MAX_SKILLS]):
        where = f"{prefix}[{index}]"
        match skill:
            case SkillReference():
                if not SKILL_ID_PATTERN.fullmatch(skill.skill_id):
                    violations.append(
                        FieldViolation(f"{where}.reference.skill_id", "1 to 64 of [A-Za-z0-9_-]")
                    )
                if skill.version and not SKILL_VERSION_PATTERN.fullmatch(skill.version):
                    violations.append(
                        FieldViolation(
                            f"{where}.reference.version", "a positive integer or 'latest'"
                        )
                    )
            case InlineSkill():
                if not 1 <= len(skill.name) <= MAX_SKILL_NAME_CHARS:
                    violations.append(FieldViolation(f"{where}.inline.name", "1 to 64 characters"))
                if not 1 <= len(skill.description) <= MAX_SKILL_DESCRIPTION_CHARS:
                    violations.append(
                        FieldViolation(f"{where}.inline.description", "1 to 1024 characters")
                    )
                if not skill.bundle.startswith(ZIP_MAGIC):
                    violations.append(FieldViolation(f"{where}.inline.zip", "must be a zip file"))
    return violations
