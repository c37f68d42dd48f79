"""The state machine is written once and documented once: docs/connectors.md's table has every edge."""

from __future__ import annotations

import re
from pathlib import Path

from tahsil.payments import machine

DOC = (Path(__file__).resolve().parents[2] / "docs" / "connectors.md").read_text()


def _doc_rows() -> list[tuple[set[str], set[str], set[str]]]:
    section = DOC.split("## The state machine", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and "`" in cells[1]:
            names = [set(re.findall(r"`([^`]+)`", cell)) or {cell} for cell in cells[:3]]
            rows.append((names[0], names[1], names[2]))
    return rows


def test_every_edge_of_the_machine_is_a_row_of_the_documented_table() -> None:
    rows = _doc_rows()
    for origin, trigger, to in machine.edges():
        origin_name = "(new)" if origin == machine.NEW else str(origin)
        found = [r for r in rows if origin_name in r[0] and trigger in r[1]]
        assert found, f"docs/connectors.md lacks the edge {origin_name} --{trigger}--> {to}"
        # refund edges end in partially_refunded or refunded by amount; the rest name their status
        if not trigger.startswith("refund."):
            assert any(str(to) in r[2] for r in found), (origin_name, trigger, to)


def test_the_merchant_may_ask_only_what_the_machine_allows() -> None:
    assert machine.REQUESTS["capture"] == {"authorized"}
    assert machine.REQUESTS["void"] == {"authorized"}
    assert machine.REQUESTS["refund"] == {"captured", "partially_refunded"}
    assert machine.next_status("voided", "capture.approved") is None
    assert machine.next_status("refunded", "refund.requested") is None


def test_refund_status_follows_the_amounts() -> None:
    assert machine.refund_status(100, 0) == "captured"
    assert machine.refund_status(100, 40) == "partially_refunded"
    assert machine.refund_status(100, 100) == "refunded"
