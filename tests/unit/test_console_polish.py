"""Small things the console gets right: the site icon at /favicon.ico, the go-live card and page names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.console import page

STATIC = Path(__file__).resolve().parents[2] / "functions" / "dashboard" / "static"


def test_favicon_ico_is_served_as_the_dashboards_icon(aws_env: Any) -> None:
    status, headers, body = page("dashboard-asset", path="/favicon.ico", resource="/favicon.ico", pathParameters=None)
    assert status == 200 and headers["content-type"] == "image/svg+xml"
    assert body == (STATIC / "icon.svg").read_text()
    assert "max-age" in headers["cache-control"]


def test_the_credential_guards_page_is_named_for_what_it_shows() -> None:
    html, js = (STATIC / "index.html").read_text(), (STATIC / "page-health.js").read_text()
    assert ">Credential guards</a>" in html and ">Health</a>" not in html
    assert 'pageHead("Credential guards"' in js


def test_the_go_live_card_leads_with_the_status_and_counts_the_checklist() -> None:
    js = (STATIC / "page-overview.js").read_text()
    assert 'stat("Go-live", g.status.replace(/_/g, " "), detail, "golive")' in js
    assert "checklist ${passed} of ${total} passed (${g.score}%)" in js
