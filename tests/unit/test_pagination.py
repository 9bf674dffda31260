"""Page sizes and page tokens."""

from __future__ import annotations

import pytest

from agent_containers.domain import pagination
from agent_containers.domain.errors import InvalidArgument


def test_page_size_rules() -> None:
    assert pagination.page_size(0) == pagination.DEFAULT_PAGE_SIZE
    assert pagination.page_size(7) == 7
    assert pagination.page_size(10**6) == pagination.MAX_PAGE_SIZE
    with pytest.raises(InvalidArgument):
        pagination.page_size(-1)


def test_token_round_trip() -> None:
    fingerprint = pagination.query_fingerprint("containers", "acme", None, False)
    token = pagination.encode_page_token(fingerprint, ["2026-01-01T00:00:00+00:00", "id"])
    assert pagination.decode_page_token(token, fingerprint, 2) == [
        "2026-01-01T00:00:00+00:00",
        "id",
    ]
    assert pagination.decode_page_token("", fingerprint, 2) is None


def test_token_is_refused_by_another_query() -> None:
    mine = pagination.query_fingerprint("containers", "acme", None, False)
    theirs = pagination.query_fingerprint("containers", "globex", None, False)
    token = pagination.encode_page_token(mine, ["a", "b"])
    with pytest.raises(InvalidArgument):
        pagination.decode_page_token(token, theirs, 2)


@pytest.mark.parametrize("token", ["%%%", "e30", "bm90IGpzb24", "eyJxIjoxLCJrIjpbXX0"])
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        pagination.decode_page_token(token, "q", 2)
    assert refused.value.violations[0].field == "page_token"
