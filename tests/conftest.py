"""Shared fixtures: moto in-process AWS built from template.yaml, a merchant, and event loading."""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"

os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")


def _reset_caches() -> None:
    from tahsil.kernel import config
    from tahsil.store import aws, crypto

    aws.reset()
    config.settings.cache_clear()
    crypto._pepper.cache_clear()
    crypto._subkey.cache_clear()
    crypto.vault = crypto.CardVault("card")
    crypto.secrets_vault = crypto.CardVault("secrets")


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh moto account with every resource of template.yaml, and the functions' environment."""
    from moto import mock_aws

    from tahsil_local import aws as local_aws
    from tahsil_local import moto_fixes, pollers, template

    moto_fixes.install()  # as the local runtime: each write atomic across threads (the expiry sweep uses threads)
    for name, value in local_aws.FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        doc = template.load()
        refs = local_aws.create_resources(doc)
        pollers.create_state_machines(doc, refs, ROOT)
        for fn in template.functions(doc):
            for name, value in fn.environment.items():
                if not name.startswith("POWERTOOLS_"):
                    monkeypatch.setenv(name, local_aws.resolve(value, refs))
        _reset_caches()
        yield refs
        _reset_caches()


@pytest.fixture
def merchant(aws_env: Any) -> dict[str, Any]:
    """A merchant whose go-live is approved, so its live keys may take payments (tests/unit/test_console_golive.py
    covers a new merchant, which starts unapproved)."""
    from tahsil.console import ops

    return ops.create_merchant("Test Store", live_approved=True)


@functools.cache
def _template_functions() -> dict[str, Any]:
    from tahsil_local import template

    return {fn.logical_id: fn for fn in template.functions(template.load())}


@functools.cache
def handler_of(logical_id: str) -> Any:
    """Import a function's handler module the way Lambda does (its CodeUri + Handler)."""
    fn = _template_functions()[logical_id]
    module_file, attr = fn.handler.rsplit(".", 1)
    spec = importlib.util.spec_from_file_location(f"test_fn_{logical_id}", fn.code_dir / f"{module_file}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, attr)


def load_event(name: str, *, key: str | None = None, body: Any = None, path_id: str | None = None,
               headers: dict[str, str] | None = None, query: dict[str, str] | None = None) -> dict[str, Any]:
    """A sample event from events/, adjusted: the same files `sam local invoke -e` takes."""
    event = copy.deepcopy(json.loads((EVENTS / f"{name}.json").read_text()))
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    if key is not None:
        event["headers"]["X-API-Key"] = key
        event["multiValueHeaders"]["X-API-Key"] = [key]
    for k, v in (headers or {}).items():
        event["headers"][k] = v
        event["multiValueHeaders"][k] = [v]
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    if path_id is not None:
        event["pathParameters"] = {"id": path_id}
        event["path"] = event["resource"].replace("{id}", path_id)
    if query is not None:
        event["queryStringParameters"] = query or None
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    return event


def load_sqs_event(name: str, *, bodies: list[str] | None = None) -> dict[str, Any]:
    """An SQS event from events/sqs/ (a function's queue trigger); ``bodies`` replace its records' bodies."""
    event = copy.deepcopy(json.loads((EVENTS / "sqs" / f"{name}.json").read_text()))
    if bodies is not None:
        template = event["Records"][0]
        event["Records"] = [{**copy.deepcopy(template), "messageId": str(uuid.uuid4()), "body": b} for b in bodies]
    return event


class Answer:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.status = raw["statusCode"]
        self.headers = {k.lower(): v for k, v in (raw.get("headers") or {}).items()}
        for k, vs in (raw.get("multiValueHeaders") or {}).items():
            self.headers[k.lower()] = vs[-1]
        self.body = json.loads(raw["body"]) if raw.get("body") else None

    @property
    def data(self) -> Any:
        return self.body["data"]

    @property
    def error(self) -> Any:
        return self.body["error"]


def invoke(logical_id: str, event: dict[str, Any]) -> Answer:
    from tahsil_local.gateway import LambdaContext

    context = LambdaContext(logical_id, 512, str(uuid.uuid4()), deadline=time.monotonic() + 15)
    return Answer(handler_of(logical_id)(event, context))


@pytest.fixture
def fake_adyen(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fake Adyen on 127.0.0.1 (tahsil_local/fake_adyen.py) and short processor timeouts (tests/unit/connector_support.py)."""
    from tahsil_local.fake_adyen import FakeAdyen
    from tests.unit.connector_support import ACCOUNT, API_KEY, HMAC_KEY

    monkeypatch.setenv("PROCESSOR_TIMEOUT_SECONDS", "0.3")
    monkeypatch.setenv("RECOVERY_DELAY_SECONDS", "0")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    fake = FakeAdyen(api_key=API_KEY, hmac_key=HMAC_KEY, merchant_account=ACCOUNT, hang_seconds=0.6)
    fake.start()
    yield fake
    fake.stop()
