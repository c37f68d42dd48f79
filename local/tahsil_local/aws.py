"""Local AWS: a moto server on loopback, with the template's resources created in it.

The handlers reach it through the standard ``AWS_ENDPOINT_URL`` variable, unmodified, and
so can the AWS CLI or any boto3 script (the endpoint is written to ``.tahsil/dev-<port>.json``).
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from typing import Any

from tahsil_local import template

REGION = "us-east-1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


class _Serialized:
    """WSGI middleware: one request at a time, as DynamoDB serializes conditional writes.

    moto's backends are not written for concurrent threads: a condition check and the write
    it guards could interleave. Real DynamoDB never lets them, so neither do we.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        # Only DynamoDB: a Lambda invocation from a Step Functions task runs a handler that
        # itself calls DynamoDB, and must not hold the lock while it does.
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            return list(self.app(environ, start_response))


class MotoServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        class QuietHandler(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        app = _Serialized(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self.host, self.port, app, threaded=True, request_handler=QuietHandler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()
        return self.url

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def use_endpoint(url: str) -> None:
    os.environ.update(FAKE_CREDENTIALS)
    os.environ["AWS_ENDPOINT_URL"] = url


def _client(service: str) -> Any:
    import boto3

    return boto3.client(service, region_name=REGION)


def create_resources(doc: dict[str, Any], prefix: str = "tahsil-local") -> dict[str, str]:
    """Create every table, key, secret and queue that the template declares; return Ref values."""
    refs: dict[str, str] = dict(template.parameter_defaults(doc))
    refs["Stage"] = "local"
    # `TAHSIL_PARAMETER_OVERRIDES="Name=value Other=value"`, like `sam deploy --parameter-overrides`.
    for pair in os.environ.get("TAHSIL_PARAMETER_OVERRIDES", "").split():
        name, _, value = pair.partition("=")
        refs[name] = value
    refs.update({"AWS::Region": REGION, "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
                 "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": prefix})
    ddb = _client("dynamodb")
    for logical_id, props in template.resources(doc, "AWS::DynamoDB::Table").items():
        name = f"{prefix}-{logical_id}"
        args: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if props.get("GlobalSecondaryIndexes"):
            args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if props.get("StreamSpecification"):
            args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        ddb.create_table(**args)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        refs[logical_id] = name
        refs[f"{logical_id}.Arn"] = ddb.describe_table(TableName=name)["Table"]["TableArn"]
        refs[f"{logical_id}.StreamArn"] = name  # the pollers find the stream from the table
    kms = _client("kms")
    for logical_id, props in template.resources(doc, "AWS::KMS::Key").items():
        refs[logical_id] = kms.create_key(Description=props.get("Description", logical_id))["KeyMetadata"]["KeyId"]
    for props in template.resources(doc, "AWS::KMS::Alias").values():  # alias/tahsil-local-card-data, as the runbook names them
        kms.create_alias(AliasName=resolve(props["AliasName"], refs), TargetKeyId=resolve(props["TargetKeyId"], refs))
    sm = _client("secretsmanager")
    for logical_id, props in template.resources(doc, "AWS::SecretsManager::Secret").items():
        length = int((props.get("GenerateSecretString") or {}).get("PasswordLength", 64))
        arn = sm.create_secret(Name=f"{prefix}-{logical_id}", SecretString=secrets.token_urlsafe(length)[:length])["ARN"]
        refs[logical_id] = arn
    sqs = _client("sqs")
    queues = template.resources(doc, "AWS::SQS::Queue")
    for logical_id, props in queues.items():
        attrs = {k: str(v) for k, v in props.items() if k in ("VisibilityTimeout", "MessageRetentionPeriod")}
        url = sqs.create_queue(QueueName=f"{prefix}-{logical_id}", Attributes=attrs)["QueueUrl"]
        refs[logical_id] = url
        refs[f"{logical_id}.Arn"] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        refs[f"{logical_id}.QueueName"] = f"{prefix}-{logical_id}"
    for logical_id, props in queues.items():  # redrive policies name other queues: set them once all exist
        redrive = props.get("RedrivePolicy")
        if redrive:
            policy = {k: resolve(v, refs) for k, v in redrive.items()}
            sqs.set_queue_attributes(QueueUrl=refs[logical_id], Attributes={"RedrivePolicy": json.dumps(policy)})
    _create_user_pools(doc, refs, prefix)
    for fn in template.functions(doc):
        refs[fn.logical_id] = fn.logical_id
        refs[f"{fn.logical_id}.Arn"] = f"arn:aws:lambda:{REGION}:123456789012:function:{fn.logical_id}"
        refs[f"{fn.logical_id}.Alias"] = f"{refs[f'{fn.logical_id}.Arn']}:live"  # AutoPublishAlias
    # Not created locally (moto cannot, or there is nothing to emulate): log groups, alarms, the dashboard,
    # the SNS alarm topic, WAF, CodeDeploy traffic shifting, IAM. docs/operations.md says so.
    return refs


_POOL_PROPERTIES = ("Policies", "UsernameAttributes", "AdminCreateUserConfig", "MfaConfiguration",
                    "AccountRecoverySetting", "Schema")
_CLIENT_PROPERTIES = ("ExplicitAuthFlows", "GenerateSecret", "PreventUserExistenceErrors", "EnableTokenRevocation",
                      "IdTokenValidity", "AccessTokenValidity", "RefreshTokenValidity", "TokenValidityUnits",
                      "ReadAttributes", "WriteAttributes")


def _create_user_pools(doc: dict[str, Any], refs: dict[str, str], prefix: str) -> None:
    """Cognito user pools and their app clients (the dashboard's sign-in), from the template's properties."""
    idp = _client("cognito-idp")
    for logical_id, props in template.resources(doc, "AWS::Cognito::UserPool").items():
        args = {k: value(doc, props[k], refs) for k in _POOL_PROPERTIES if k in props}
        args = {k: v for k, v in args.items() if v is not NO_VALUE}
        pool = idp.create_user_pool(PoolName=f"{prefix}-{logical_id}", **args)["UserPool"]
        refs[logical_id] = pool["Id"]
        refs[f"{logical_id}.Arn"] = pool["Arn"]
        refs[f"{logical_id}.ProviderURL"] = f"cognito-idp.{REGION}.amazonaws.com/{pool['Id']}"
    for logical_id, props in template.resources(doc, "AWS::Cognito::UserPoolClient").items():
        args = {k: props[k] for k in _CLIENT_PROPERTIES if k in props}
        client = idp.create_user_pool_client(UserPoolId=resolve(props["UserPoolId"], refs),
                                             ClientName=f"{prefix}-{logical_id}", **args)["UserPoolClient"]
        refs[logical_id] = client["ClientId"]


NO_VALUE = object()


def condition(doc: dict[str, Any], name: str, refs: dict[str, str]) -> bool:
    """Evaluate one of the template's Conditions with the local parameter values."""
    return _truth(doc, doc["Conditions"][name], refs)


def _truth(doc: dict[str, Any], expr: Any, refs: dict[str, str]) -> bool:
    if isinstance(expr, dict) and "Fn::Equals" in expr:
        a, b = (value(doc, x, refs) for x in expr["Fn::Equals"])
        return str(a) == str(b)
    if isinstance(expr, dict) and "Fn::Not" in expr:
        return not _truth(doc, expr["Fn::Not"][0], refs)
    if isinstance(expr, dict) and "Fn::And" in expr:
        return all(_truth(doc, x, refs) for x in expr["Fn::And"])
    if isinstance(expr, dict) and "Fn::Or" in expr:
        return any(_truth(doc, x, refs) for x in expr["Fn::Or"])
    if isinstance(expr, dict) and "Condition" in expr:
        return condition(doc, expr["Condition"], refs)
    raise ValueError(f"unsupported condition {expr!r}")


def value(doc: dict[str, Any], raw: Any, refs: dict[str, str]) -> Any:
    """A property value with parameters and Fn::If resolved (NO_VALUE for AWS::NoValue); structure kept."""
    if isinstance(raw, dict) and "Fn::If" in raw:
        name, yes, no = raw["Fn::If"]
        return value(doc, yes if condition(doc, name, refs) else no, refs)
    if isinstance(raw, dict) and raw.get("Ref") == "AWS::NoValue":
        return NO_VALUE
    if isinstance(raw, dict) and "Ref" in raw:
        return refs[raw["Ref"]]
    if isinstance(raw, dict):
        resolved = {k: value(doc, v, refs) for k, v in raw.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}
    if isinstance(raw, list):
        return [v for v in (value(doc, x, refs) for x in raw) if v is not NO_VALUE]
    return raw


def resolve(value: Any, refs: dict[str, str]) -> str:
    """Resolve the intrinsic functions that environment variables use (Ref, and Sub of refs)."""
    if isinstance(value, dict) and "Ref" in value:
        return refs[value["Ref"]]
    if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        text = value["Fn::Sub"]
        for name, resolved in refs.items():
            text = text.replace("${" + name + "}", resolved)
        return text
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        return refs.get(f"{logical_id}.{attribute}", refs[logical_id])
    if isinstance(value, dict) and "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(resolve(p, refs) for p in parts)
    return str(value)
