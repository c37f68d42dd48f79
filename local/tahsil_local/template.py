"""Read ``template.yaml`` itself, so the local runtime cannot drift from what ``sam deploy`` builds."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that understands CloudFormation's short tags (!Ref, !GetAtt, !Sub...)."""


def _tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_CfnLoader)


@dataclass
class Route:
    method: str
    path: str  # API Gateway resource path, e.g. /v1/payments/{id}/capture
    regex: re.Pattern[str]


@dataclass
class Function:
    logical_id: str
    code_dir: Path
    handler: str  # module.attribute
    timeout: int
    memory: int
    environment: dict[str, Any]
    routes: list[Route] = field(default_factory=list)
    raw_events: dict[str, Any] = field(default_factory=dict)


def _route(method: str, path: str) -> Route:
    pattern = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+)", path)  # a greedy {proxy+} takes the rest of the path
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
    return Route(method.upper(), path, re.compile(f"^{pattern}$"))


def specificity(path: str) -> tuple[int, ...]:
    """API Gateway's order among resources that match one path: per segment, literal (0) before {param} (1)
    before a greedy {proxy+} (2)."""
    return tuple(2 if part.endswith("+}") else 1 if part.startswith("{") else 0 for part in path.strip("/").split("/"))


def functions(doc: dict[str, Any]) -> list[Function]:
    glob = (doc.get("Globals") or {}).get("Function") or {}
    found = []
    for logical_id, res in doc["Resources"].items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        props = res["Properties"]
        env = dict((glob.get("Environment") or {}).get("Variables") or {})
        env.update((props.get("Environment") or {}).get("Variables") or {})
        fn = Function(
            logical_id=logical_id,
            code_dir=ROOT / props["CodeUri"],
            handler=props["Handler"],
            timeout=int(props.get("Timeout", glob.get("Timeout", 3))),
            memory=int(props.get("MemorySize", glob.get("MemorySize", 128))),
            environment=env,
            raw_events=props.get("Events") or {},
        )
        for event in fn.raw_events.values():
            if event["Type"] == "Api":
                fn.routes.append(_route(event["Properties"]["Method"], event["Properties"]["Path"]))
        found.append(fn)
    by_id = {fn.logical_id: fn for fn in found}
    for method, path, target in definition_routes(doc):
        if target in by_id:
            by_id[target].routes.append(_route(method, path))
    return found


_INTEGRATION_TARGET = re.compile(r"/functions/\$\{(\w+)(?:\.\w+)?\}/invocations")


def _integration_target(uri: Any) -> str | None:
    """The function a Lambda proxy URI invokes: ``!Sub ".../functions/${Fn.Alias}/invocations"``, or the list form
    ``!Sub [".../functions/${Target}/invocations", {Target: !Ref Fn.Alias}]``."""
    sub = uri.get("Fn::Sub") if isinstance(uri, dict) else uri
    text, variables = (sub[0], sub[1]) if isinstance(sub, list) and len(sub) == 2 else (sub, {})
    match = _INTEGRATION_TARGET.search(text) if isinstance(text, str) else None
    if match is None:
        return None
    ref = variables.get(match.group(1)) if isinstance(variables, dict) else None
    if isinstance(ref, dict) and isinstance(ref.get("Ref"), str):
        return ref["Ref"].split(".", 1)[0]
    return match.group(1)


def definition_routes(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(method, path, function logical id) for the routes an Api declares in its own ``DefinitionBody`` (its
    Lambda proxy integrations; SAM merges the functions' Api events into the same document)."""
    found = []
    for props in resources(doc, "AWS::Serverless::Api").values():
        for path, methods in ((props.get("DefinitionBody") or {}).get("paths") or {}).items():
            for key, operation in methods.items():
                integration = (operation or {}).get("x-amazon-apigateway-integration") or {}
                target = _integration_target(integration.get("uri"))
                if integration.get("type") == "aws_proxy" and target:
                    method = "ANY" if key == "x-amazon-apigateway-any-method" else key.upper()
                    found.append((method, path, target))
    return found


def resources(doc: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v.get("Properties") or {} for k, v in doc["Resources"].items() if v["Type"] == kind}


def base_paths(doc: dict[str, Any]) -> tuple[str, ...]:
    """The custom domain's base-path mappings (e.g. ``api``), which the local gateway serves as well."""
    found = []
    for props in resources(doc, "AWS::ApiGateway::BasePathMapping").values():
        base = props.get("BasePath")
        if isinstance(base, str) and base.strip("/") and base != "(none)":
            found.append(base.strip("/"))
    return tuple(found)


def parameter_defaults(doc: dict[str, Any]) -> dict[str, str]:
    return {k: str(v.get("Default", "")) for k, v in (doc.get("Parameters") or {}).items()}
