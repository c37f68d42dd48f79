"""The contract around the handlers: OpenAPI from the code, the template, sample events."""

from __future__ import annotations

import json

from tests.support.lambdas import EVENTS, invoke, load_event


def test_committed_openapi_documents_match_the_code() -> None:
    from tahsil_local import openapi

    generated = openapi.generate()
    for path in openapi.OUTPUTS:
        assert path.read_text() == generated, f"{path} is stale: run `make openapi`"
    # One source of truth: the layer's copy is a link to the committed document, not a second file.
    assert openapi.LAYER_COPY.is_symlink() and openapi.LAYER_COPY.resolve() == openapi.OUTPUTS[0].resolve()


def test_openapi_function_serves_the_document(aws_env: object) -> None:
    answer = invoke("OpenApiFunction", load_event("openapi"))
    assert answer.status == 200
    assert answer.body["openapi"].startswith("3.")
    assert "/v1/payments/{id}/refund" in answer.body["paths"]


def test_every_api_route_in_the_template_has_a_sample_event_and_the_event_matches_it() -> None:
    from tahsil_local import template

    # ANY routes (RouteFallbackFunction: a method or path no route has) take every method; their sample is
    # events/route-fallback.json, a GET on a POST-only resource.
    routes = {(r.method, r.path) for fn in template.functions(template.load()) for r in fn.routes if r.method != "ANY"}
    samples = {p.stem: json.loads(p.read_text()) for p in EVENTS.glob("*.json")}
    events = {(e["httpMethod"], e["resource"]) for name, e in samples.items() if name != "route-fallback"}
    assert routes == events
    fallback = samples["route-fallback"]
    assert ("ANY", fallback["resource"]) in {(r.method, r.path) for fn in template.functions(template.load())
                                             for r in fn.routes}


def test_template_declares_arm64_python313_and_protected_tables() -> None:
    from tahsil_local import template

    doc = template.load()
    glob = doc["Globals"]["Function"]
    assert glob["Runtime"] == "python3.13" and glob["Architectures"] == ["arm64"]
    for name, props in template.resources(doc, "AWS::DynamoDB::Table").items():
        assert props["BillingMode"] == "PAY_PER_REQUEST", name
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], name
        assert props["SSESpecification"]["SSEEnabled"], name
        assert props["TimeToLiveSpecification"]["Enabled"], name
