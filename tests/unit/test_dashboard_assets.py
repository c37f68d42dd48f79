"""The dashboard's ES modules as the dashboard function serves them, and the constants it generates from the backend.

A merchant's staff rely on the console offering exactly what the API accepts (every event type and
scope, the right decimals for each currency, every status coloured) and on a deploy never mixing
modules of two releases in one browser.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any, get_args

import pytest

from tests.support.lambdas import handler_of, load_event

STATIC = Path(__file__).resolve().parents[2] / "functions" / "dashboard" / "static"
MODULES = sorted(p.name for p in STATIC.glob("*.js"))
EXPORT = re.compile(r"^export const (\w+) = Object\.freeze\((.*)\);$")


def get(path: str, name: str | None = None) -> tuple[int, dict[str, str], str]:
    """GET a dashboard route through the function's handler: status, lower-cased headers, body."""
    from tahsil_local.gateway import LambdaContext

    event = load_event("dashboard-asset")
    event.update(path=path, resource="/dashboard/assets/{name}" if name else path,
                 pathParameters={"name": name} if name else None)
    raw = handler_of("DashboardFunction")(event, LambdaContext("dashboard", 512, str(uuid.uuid4()), time.monotonic() + 15))
    headers = {k.lower(): v for k, v in (raw.get("headers") or {}).items()}
    headers |= {k.lower(): vs[-1] for k, vs in (raw.get("multiValueHeaders") or {}).items()}
    return raw["statusCode"], headers, raw.get("body") or ""


def function_module(code_dir: str) -> Any:
    """A function's app module, loaded from its file as Lambda would (a fresh copy: its caches are its own)."""
    spec = importlib.util.spec_from_file_location(f"test_dashboard_{code_dir.replace('/', '_')}",
                                                  STATIC.parents[1] / code_dir / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def asset(name: str) -> str:
    status, headers, body = get(f"/dashboard/assets/{name}", name)
    assert status == 200, (name, body)
    return body


def served_constants() -> dict[str, Any]:
    """constants.js as the browser gets it, each export parsed back from its JSON."""
    found: dict[str, Any] = {}
    for line in asset("constants.js").splitlines():
        if m := EXPORT.match(line):
            found[m.group(1)] = json.loads(m.group(2))
        else:
            assert line.startswith("//"), line  # nothing else: no code that could compute a value
    return found


# ------------------------------------------------------------------ the constants


def test_the_served_constants_are_the_backends(aws_env: Any) -> None:
    from tahsil.console import banking, trace
    from tahsil.console.models import GoLive, GoLiveReview
    from tahsil.kernel.money import MINOR_UNITS
    from tahsil.kernel.principal import SCOPES
    from tahsil.payments.models import IntentStatus, PaymentStatus
    from tahsil.webhooks import events, rendering

    served = served_constants()
    assert served["EVENT_TYPES"] == list(rendering.EVENT_TYPES)
    assert served["TEST_EVENT"] == rendering.TEST_EVENT == "webhook_endpoint.test"
    assert served["MINOR_UNITS"] == MINOR_UNITS and served["MINOR_UNITS"]["IQD"] == 3 and served["MINOR_UNITS"]["JPY"] == 0
    assert served["SCOPES"] == SCOPES
    schemes = served["PAYOUT_SCHEMES"]
    assert set(schemes) == set(banking.PAYOUT_CURRENCIES) and schemes["USD"] == "aba"
    assert {c for c, s in schemes.items() if s == "iban"} == set(banking.IBAN_CURRENCIES)
    statuses = served["STATUSES"]
    assert statuses["payment"] == [s.value for s in PaymentStatus]
    assert statuses["payment_intent"] == [s.value for s in IntentStatus]
    assert statuses["go_live"] == list(get_args(GoLive.model_fields["status"].annotation))
    assert statuses["go_live_review"] == list(get_args(GoLiveReview.model_fields["status"].annotation))
    assert set(statuses["event_delivery"]) == set(events._DELIVERY_FILTERS)  # what GET /v1/events filters by
    assert served["FULFILLABLE"] == [s.value for s in trace.FULFILLABLE] == ["captured", "partially_refunded"]


def test_the_event_filter_offers_what_the_events_api_accepts(aws_env: Any) -> None:
    accepted = inspect.signature(function_module("events/list").list_events).parameters["delivery_status"].annotation
    literal = next(a for a in get_args(get_args(accepted)[0]) if get_args(a))  # Annotated[Literal[...] | None, Query()]
    assert served_constants()["STATUSES"]["event_delivery"] == list(get_args(literal))


def test_every_status_the_api_answers_has_a_colour(aws_env: Any) -> None:
    served = served_constants()
    tones = served["STATUS_TONES"]
    assert set(tones.values()) <= {"ok", "warn", "bad", ""}
    for kind, words in served["STATUSES"].items():
        missing = [w for w in words if w not in tones]
        assert not missing, f"{kind}: {missing} have no colour in tahsil/console/constants.py _TONES"
    assert tones["captured"] == "ok" and tones["failed"] == "bad" and tones["refund_pending"] == "warn"


def test_no_module_copies_a_backend_list_by_hand() -> None:
    from tahsil.kernel.money import MINOR_UNITS
    from tahsil.kernel.principal import SCOPES
    from tahsil.payments.models import PaymentStatus
    from tahsil.webhooks import rendering

    owned = set(rendering.EVENT_TYPES) | {rendering.TEST_EVENT} | set(SCOPES) | set(MINOR_UNITS) | {s.value for s in PaymentStatus}
    # Defaults a form starts with (a new key's scopes, a new endpoint's event, the payout currency) name one value each.
    defaults = {"payments:create", "payments:read", "payment.captured", "IQD"}
    for name in MODULES:
        quoted = set(re.findall(r'"([^"\n]*)"', (STATIC / name).read_text()))
        assert not (quoted & owned) - defaults, f"{name} spells {sorted((quoted & owned) - defaults)}: import them from constants.js"
    assert not (STATIC / "constants.js").exists()  # generated at request time, never a file to edit


# ------------------------------------------------------------------ the modules


def test_every_module_is_javascript_cached_and_versioned_by_the_release(aws_env: Any) -> None:
    status, headers, html = get("/dashboard")
    assert status == 200
    tag = re.search(r'<script type="module" src="dashboard/assets/dashboard\.js\?v=([0-9a-f]{12})"></script>', html).group(1)
    names = set(MODULES) | {"constants.js"}
    preloaded = re.findall(r'<link rel="modulepreload" href="dashboard/assets/([\w-]+\.js)\?v=' + tag + '">', html)
    assert set(preloaded) == names - {"dashboard.js"}  # fetched in parallel, not import by import
    for name in sorted(names):
        status, headers, body = get(f"/dashboard/assets/{name}", name)
        assert status == 200 and headers["content-type"] == "text/javascript; charset=utf-8", name
        assert headers["cache-control"] == "public, max-age=86400" and headers["x-content-type-options"] == "nosniff"
        for spec in re.findall(r'^import\b[^"]*\bfrom\s*"([^"]+)";$', body, re.M):
            target, _, version = spec.partition("?v=")
            assert version == tag, (name, spec)  # a new release never loads an old module from the cache
            assert target.startswith("./") and target[2:] in names, (name, spec)
        assert "import(" not in body and not re.search(r"^\s*import\s+[\"']", body, re.M), name  # static, named imports only
        assert len(re.findall(r"^import\b", body, re.M)) == len(re.findall(r'^import\b[^"]*\bfrom\s*"[^"]+";$', body, re.M))
    assert get("/dashboard/assets/dashboard.css", "dashboard.css")[1]["content-type"] == "text/css; charset=utf-8"


def test_the_release_changes_when_any_module_changes(aws_env: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    app = function_module("dashboard")
    tag, served = app.release()
    for p in STATIC.iterdir():
        (tmp_path / p.name).write_text(p.read_text())
    (tmp_path / "format.js").write_text((STATIC / "format.js").read_text() + "// changed\n")
    monkeypatch.setattr(app, "STATIC", tmp_path)
    app.release.cache_clear()
    changed, now = app.release()
    assert changed != tag and f"?v={changed}" in now["dashboard.js"] and f"?v={tag}" not in now["dashboard.js"]


def test_the_modules_are_small() -> None:
    sizes = {name: len((STATIC / name).read_text().splitlines()) for name in MODULES}
    assert max(sizes.values()) <= 200, sizes
    assert len(MODULES) >= 12  # one per page plus the core, not one file
