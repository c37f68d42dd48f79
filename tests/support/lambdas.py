"""Invoke a function of template.yaml as Lambda would, with a sample event from events/."""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


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
