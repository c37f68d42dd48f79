"""A client mistake is never a 500: every JSON route refuses a bad body with a 4xx naming the problem,
and every answer carries one request id, the same in ``X-Request-Id`` and the body (issue 11)."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import pytest

from tests.support.lambdas import EVENTS, Answer, invoke

# (name, raw body, Content-Type or None, status, code, words the message must contain)
BIG = 64 * 1024
BAD_BODIES: list[tuple[str, bytes, str | None, int, str, str]] = [
    ("not-utf8", b'{"amount": 100, "x": "\xff"}', "application/json", 400, "INVALID_REQUEST", "UTF-8"),
    ("utf16", '{"amount": 100}'.encode("utf-16"), "application/json", 400, "INVALID_REQUEST", "UTF-16"),
    ("utf16-no-bom", '{"amount": 100}'.encode("utf-16-le"), "application/json", 400, "INVALID_REQUEST", "UTF-16"),
    ("utf8-bom", b'\xef\xbb\xbf{"amount": 100}', "application/json", 400, "INVALID_REQUEST", "byte order mark"),
    ("text-plain", b'{"amount": 100}', "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type: application/json"),
    ("xml", b'{"amount": 100}', "application/xml", 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type: application/json"),
    ("form", b"amount=100&currency=USD", "application/x-www-form-urlencoded", 415, "UNSUPPORTED_MEDIA_TYPE",
     "Content-Type: application/json"),
    ("no-content-type", b'{"amount": 100}', None, 415, "UNSUPPORTED_MEDIA_TYPE", "none was sent"),
    ("empty-form-post", b"", "application/x-www-form-urlencoded", 415, "UNSUPPORTED_MEDIA_TYPE",
     "Content-Type: application/json"),
    ("empty-text-plain", b"", "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type: application/json"),
    ("latin1-charset", b'{"amount": 100}', "application/json; charset=latin-1", 415, "UNSUPPORTED_MEDIA_TYPE",
     "Content-Type: application/json"),
    ("nested-1000", b"[" * 1000 + b"]" * 1000, "application/json", 400, "INVALID_REQUEST", "nested deeper"),
    ("nested-objects", b'{"a":' * 200 + b"1" + b"}" * 200, "application/json", 400, "INVALID_REQUEST",
     "nested deeper"),
    ("int-5000-digits", b'{"amount": ' + b"9" * 5000 + b"}", "application/json", 400, "INVALID_REQUEST", "digits"),
    ("float-huge", b'{"amount": 1e999}', "application/json", 400, "INVALID_REQUEST", "too large"),
    ("nan", b'{"amount": NaN}', "application/json", 400, "INVALID_REQUEST", "NaN"),
    ("duplicate-key", b'{"amount": 100, "amount": 200}', "application/json", 400, "INVALID_REQUEST", "twice"),
    ("not-json", b'{"amount": 100', "application/json", 400, "INVALID_REQUEST", "not valid JSON"),
    ("null", b"null", "application/json", 400, "INVALID_REQUEST", "must be a JSON object"),
    ("list", b'[{"amount": 100}]', "application/json", 400, "INVALID_REQUEST", "must be a JSON object"),
    ("oversized", b'{"description": "' + b"a" * BIG + b'"}', "application/json", 413, "PAYLOAD_TOO_LARGE", "limit"),
]


def _json_routes() -> list[tuple[str, str, str]]:
    """(function, method, path) of every route in template.yaml that takes a body."""
    from tahsil_local import template

    return sorted((fn.logical_id, r.method, r.path) for fn in template.functions(template.load()) for r in fn.routes
                  if r.method in ("POST", "PUT", "PATCH") and r.path not in FORM_ROUTES)


# Routes a browser posts an HTML form to (tests/unit/test_threeds.py covers their bodies).
FORM_ROUTES = frozenset({"/checkout/authenticate/{id}"})


def _sample(method: str, path: str) -> dict[str, Any]:
    for file in sorted(EVENTS.glob("*.json")):
        event = json.loads(file.read_text())
        if event["httpMethod"] == method and event["resource"] == path:
            return event
    raise AssertionError(f"no sample event for {method} {path}")


def _with_body(event: dict[str, Any], key: str, raw: bytes, content_type: str | None) -> dict[str, Any]:
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() not in ("content-type",
                                                                                          "idempotency-key")}
    if "X-API-Key" in headers:
        headers["X-API-Key"] = key
    if content_type is not None:
        headers["Content-Type"] = content_type
    event["headers"] = headers
    event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    event["requestContext"]["requestId"] = f"req-{id(event)}"
    try:
        event["body"], event["isBase64Encoded"] = raw.decode("utf-8"), False
    except UnicodeDecodeError:  # as API Gateway (and the local front door) hand a binary body to Lambda
        event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
    return event


def assert_one_request_id(answer: Answer) -> str:
    assert answer.body is not None and answer.body["success"] is False, answer.raw
    assert answer.headers["x-request-id"] == answer.error["request_id"], answer.raw
    return str(answer.error["request_id"])


@pytest.mark.parametrize(("function", "method", "path"), _json_routes(), ids=lambda v: str(v))
def test_every_json_route_refuses_every_kind_of_bad_body_with_a_4xx_naming_it(
        merchant: dict[str, Any], function: str, method: str, path: str) -> None:
    key = merchant["keys"]["test"]["secret"]
    for name, raw, content_type, status, code, words in BAD_BODIES:
        answer = invoke(function, _with_body(_sample(method, path), key, raw, content_type))
        assert answer.status == status, (name, answer.raw)
        assert answer.error["code"] == code, (name, answer.error)
        assert words in answer.error["message"], (name, answer.error)
        assert answer.error["param"] == ("Content-Type" if status == 415 else "body"), (name, answer.error)
        assert_one_request_id(answer)


def test_a_good_body_with_a_charset_still_works(merchant: dict[str, Any]) -> None:
    event = _with_body(_sample("POST", "/v1/payments/authorize"), merchant["keys"]["test"]["secret"],
                       json.dumps({"amount": 500, "currency": "USD", "card": {
                           "number": "4242424242424242", "cardholder_name": "A B", "exp_month": 12,
                           "exp_year": 2030, "cvv": "123"}}).encode(), "application/json; charset=UTF-8")
    answer = invoke("AuthorizePaymentFunction", event)
    assert answer.status == 200, answer.raw
    assert answer.headers["x-request-id"] == event["requestContext"]["requestId"]


def test_a_duplicate_card_number_is_refused_not_resolved_last_one_wins(merchant: dict[str, Any]) -> None:
    raw = (b'{"amount": 500, "currency": "USD", "card": {"number": "4000000000000002", "number": "4242424242424242",'
           b' "cardholder_name": "A B", "exp_month": 12, "exp_year": 2030, "cvv": "123"}}')
    answer = invoke("AuthorizePaymentFunction", _with_body(_sample("POST", "/v1/payments/authorize"),
                                                            merchant["keys"]["test"]["secret"], raw, "application/json"))
    assert answer.status == 400 and "'number' twice" in answer.error["message"]


def test_an_event_without_a_request_id_gets_one_used_in_header_and_body(merchant: dict[str, Any]) -> None:
    event = _sample("GET", "/v1/payments/{id}")
    event["headers"]["X-API-Key"] = merchant["keys"]["test"]["secret"]
    event["requestContext"].pop("requestId")
    answer = invoke("GetPaymentFunction", event)
    assert answer.status == 404
    assert assert_one_request_id(answer)


def test_a_concurrent_update_names_the_idempotency_key_only_when_one_was_sent(merchant: dict[str, Any],
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil.kernel.errors import ConcurrentUpdate
    from tahsil.payments import modifications

    def lost(*_: Any, **__: Any) -> Any:
        raise ConcurrentUpdate("the payment is being changed by other requests; retry")

    monkeypatch.setattr(modifications, "capture", lost)
    key = merchant["keys"]["test"]["secret"]
    for idem, advice in ((None, "; retry"), ("cap-1", "; retry with the same Idempotency-Key")):
        event = _with_body(_sample("POST", "/v1/payments/{id}/capture"), key, b"{}", "application/json")
        if idem:
            event["headers"]["Idempotency-Key"] = idem
        answer = invoke("CapturePaymentFunction", event)
        assert answer.status == 409 and answer.error["code"] == "CONCURRENT_UPDATE", answer.raw
        assert answer.error["message"].endswith(advice), answer.error
        assert idem is not None or "Idempotency-Key" not in answer.error["message"]
        assert_one_request_id(answer)


def test_two_requests_resolved_at_once_each_see_their_own_event() -> None:
    """Powertools keeps the current event on a class shared by every resolver; ours is per thread."""
    from tahsil.api import http

    apps = [http.resolver(), http.resolver()]
    inside = threading.Barrier(2, timeout=10)
    seen: dict[str, str] = {}

    for app in apps:
        @app.get("/echo")
        def echo(app: Any = app) -> dict[str, str]:
            mine = app.current_event.request_context.request_id
            inside.wait()  # both requests are now being resolved
            seen[mine] = app.current_event.request_context.request_id
            return {"id": app.current_event.request_context.request_id}

    def call(app: Any, rid: str) -> None:
        event = {"resource": "/echo", "path": "/echo", "httpMethod": "GET", "headers": {}, "body": None,
                 "requestContext": {"requestId": rid, "resourcePath": "/echo", "stage": "local", "path": "/echo"}}
        app.resolve(event, None)

    threads = [threading.Thread(target=call, args=(app, f"r{i}")) for i, app in enumerate(apps)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert seen == {"r0": "r0", "r1": "r1"}


# ------------------------------------------------------------------ methods and paths no route has


def _template_routes() -> dict[str, set[str]]:
    from tahsil_local import template

    found: dict[str, set[str]] = {}
    for fn in template.functions(template.load()):
        for r in fn.routes:
            if r.method != "ANY":
                found.setdefault(r.path, set()).add(r.method)
    return found


def test_the_layers_route_table_is_the_templates() -> None:
    from tahsil.api import routes

    assert {path: set(methods) for path, methods in routes.table().items()} == _template_routes()


def test_every_resource_has_an_any_fallback_and_so_does_every_other_path() -> None:
    from tahsil_local import template

    fallback = next(fn for fn in template.functions(template.load()) if fn.logical_id == "RouteFallbackFunction")
    assert {r.method for r in fallback.routes} == {"ANY"}
    assert {r.path for r in fallback.routes} == set(_template_routes()) | {"/", "/{proxy+}"}


def _fallback_event(method: str, path: str, resource: str) -> dict[str, Any]:
    event = json.loads((EVENTS / "route-fallback.json").read_text())
    event.update(httpMethod=method, path=path, resource=resource)
    event["headers"].pop("X-API-Key")  # no key is needed to learn that a path does not exist
    event["requestContext"].update(httpMethod=method, resourcePath=resource, requestId=f"fb-{method}-{path}")
    return event


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "PATCH", "DELETE", "CONNECT"])
def test_a_method_the_path_lacks_is_a_405_naming_the_ones_it_has(aws_env: Any, method: str) -> None:
    answer = invoke("RouteFallbackFunction", _fallback_event(method, "/v1/payments/authorize",
                                                             "/v1/payments/authorize"))
    assert answer.status == 405 and answer.error["code"] == "METHOD_NOT_ALLOWED", answer.raw
    assert answer.headers["allow"] == "POST"
    assert f"{method} is not allowed on /v1/payments/authorize" in answer.error["message"]
    assert_one_request_id(answer)
    on_id = invoke("RouteFallbackFunction", _fallback_event("POST", "/v1/payments/pay_1", "/v1/payments/{id}"))
    assert on_id.status == 405 and on_id.headers["allow"] == "GET"


def test_a_path_no_route_has_is_a_404_with_a_request_id(aws_env: Any) -> None:
    answer = invoke("RouteFallbackFunction", _fallback_event("GET", "/v1/paymnts", "/{proxy+}"))
    assert answer.status == 404 and answer.error["code"] == "NOT_FOUND" and answer.error["param"] == "path"
    assert "GET /v1/paymnts" in answer.error["message"]
    assert answer.error["request_id"] == "fb-GET-/v1/paymnts"
    assert_one_request_id(answer)


def test_the_local_front_door_picks_resources_as_api_gateway_does() -> None:
    from tahsil_local import template
    from tahsil_local.gateway import Router

    router = Router(template.functions(template.load()))

    def target(method: str, path: str) -> str:
        found = router.match(method, path)
        assert found is not None
        return found[1].fn.logical_id

    assert target("POST", "/v1/payments/authorize") == "AuthorizePaymentFunction"
    assert target("GET", "/v1/payments/authorize") == "RouteFallbackFunction"  # never GET /v1/payments/{id}
    assert target("GET", "/v1/payments/pay_123") == "GetPaymentFunction"
    assert target("HEAD", "/v1/payments/pay_123") == "RouteFallbackFunction"
    assert target("GET", "/v1/paymnts") == "RouteFallbackFunction"
    assert target("GET", "/v1/payments/pay_1/capture/extra/segments") == "RouteFallbackFunction"
    assert target("GET", "/") == "RouteFallbackFunction"


# ------------------------------------------------------------------ the contract


def test_the_openapi_document_says_what_the_gateway_answers() -> None:
    doc = json.loads((EVENTS.parent / "docs" / "openapi.json").read_text())
    ids = {op["operationId"]: (method, path) for path, item in doc["paths"].items() for method, op in item.items()}
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            codes = set(op["responses"])
            assert "422" not in codes, (method, path)  # validation errors are 400
            assert {"400", "429"} <= codes, (method, path)
            if path.startswith("/v1/"):
                assert {"401", "403"} <= codes, (method, path)
            if method in ("post", "put", "patch", "delete"):
                assert {"413", "415"} <= codes, (method, path)
            successes = sorted(c for c in codes if c.startswith("2"))
            # One success status; a route that calls a processor may also answer 202, its outcome not known yet
            # (docs/connectors.md).
            assert len(successes) == 1 or (len(successes) == 2 and "202" in successes and path.startswith(
                ("/v1/payments", "/public/payment-intents"))), (method, path, successes)
            for code, answer in op["responses"].items():
                assert "schema" in answer["content"]["application/json"], (method, path, code)
                assert "X-Request-Id" in answer["headers"], (method, path, code)
    links = {source: sorted(ids[link["operationId"]] for link in answer.get("links", {}).values())
             for source in [("post", "/v1/payments/authorize"), ("post", "/v1/payment-intents"),
                            ("post", "/v1/webhook-endpoints")]
             for answer in doc["paths"][source[1]][source[0]]["responses"].values() if answer.get("links")}
    assert links == {
        ("post", "/v1/payments/authorize"): [("get", "/v1/payments/{id}"), ("post", "/v1/payments/{id}/capture"),
                                             ("post", "/v1/payments/{id}/refund"), ("post", "/v1/payments/{id}/void")],
        ("post", "/v1/payment-intents"): [("get", "/v1/payment-intents/{id}"),
                                          ("post", "/public/payment-intents/{id}/confirm"),
                                          ("post", "/v1/payment-intents/{id}/cancel")],
        ("post", "/v1/webhook-endpoints"): [("get", "/v1/webhook-endpoints/{id}"), ("patch", "/v1/webhook-endpoints/{id}"),
                                            ("post", "/v1/webhook-endpoints/{id}/rotate-secret")],
    }


@pytest.mark.parametrize("value", ["0.5", "1700000000", "2026-01-31", "2026-01-31T12:00:00", "yesterday"])
def test_time_filters_take_iso_8601_with_an_offset_only(merchant: dict[str, Any], value: str) -> None:
    event = _sample("GET", "/v1/payments")
    event["headers"]["X-API-Key"] = merchant["keys"]["test"]["secret"]
    event["queryStringParameters"] = {"created_lte": value}
    event["multiValueQueryStringParameters"] = {"created_lte": [value]}
    answer = invoke("ListPaymentsFunction", event)
    assert answer.status == 400 and answer.error["param"] == "created_lte", answer.raw
    assert "ISO 8601" in answer.error["message"]
    event["queryStringParameters"] = {"created_lte": "2026-01-31T12:00:00+03:00"}
    event["multiValueQueryStringParameters"] = {"created_lte": ["2026-01-31T12:00:00+03:00"]}
    assert invoke("ListPaymentsFunction", event).status == 200
