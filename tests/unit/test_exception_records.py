"""A reported exception on ``ops.exceptions`` is completed from its kind (the ops agent then
merges it); what is no exception record is refused, so the agent counts it ignored."""

from __future__ import annotations

import pytest

from streams.domain.exceptions import complete


def test_fields_the_producer_left_out_come_from_the_kind() -> None:
    rec = complete("ack-deadline:1", {"kind": "ack-deadline", "id": "forged"})
    assert rec == {
        "kind": "ack-deadline",
        "id": "ack-deadline:1",  # the key names it, not the value
        "owner": "operations",
        "severity": "critical",
        "status": "open",
        "refs": {},
        "rootCause": "",
        "runbook": "docs/runbooks/ack-deadline.md",
    }
    given = complete("x", {"kind": "new-kind", "owner": "finance", "status": "resolved"})
    assert (given["owner"], given["severity"]) == ("finance", "warning")
    assert given["status"] == "resolved"


@pytest.mark.parametrize("rec", [[], "text", {"kind": ""}, {"kind": "k", "status": "gone"}])
def test_what_is_no_exception_record_is_refused(rec: object) -> None:
    with pytest.raises(ValueError):
        complete("x", rec)
