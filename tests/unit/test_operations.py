"""Operations by default: template.yaml is walked so a function, queue, trigger or table cannot be added without
its log group, failure path, alarm and retention policy; and `tahsil ops redrive` replays what failed, once."""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

import pytest

from tests.support.template import _refs

STATEFUL = ("AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::KMS::Key", "AWS::SecretsManager::Secret",
            "AWS::Cognito::UserPool", "AWS::Logs::LogGroup")
# The credential-guards report audits every key of a merchant: the one function allowed to Scan credentials.
MAY_SCAN_CREDENTIALS = {"GetCredentialGuardsFunction"}
# Functions that connect to merchant-chosen URLs: they open webhook secrets and never card numbers.
NEVER_CARD_DATA = {"WebhookDeliverFunction", "WebhookRetryFunction"}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    from tahsil_local import template

    return template.load()


def _of_type(doc: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in doc["Resources"].items() if v["Type"] == kind}




def _alarms(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [r["Properties"] for r in _of_type(doc, "AWS::CloudWatch::Alarm").values()]


def _alarmed(doc: dict[str, Any], metric: str) -> set[str]:
    """Logical ids whose dimension appears in an alarm on ``metric`` (plain or inside metric math)."""
    seen: set[str] = set()
    for props in _alarms(doc):
        if props.get("MetricName") == metric:
            seen |= _refs(props.get("Dimensions"))
        for m in props.get("Metrics") or []:
            stat = (m.get("MetricStat") or {}).get("Metric") or {}
            if stat.get("MetricName") == metric:
                seen |= _refs(stat.get("Dimensions"))
    return seen


def _touches_payments(res: dict[str, Any]) -> bool:
    """Its policies or triggers name the payments table or the card key: its logs are a payment audit trail."""
    props = res["Properties"]
    return bool(_refs([props.get("Policies"), props.get("Events")]) & {"PaymentsTable", "CardDataKey"})


def _touches_payments_in(doc: dict[str, Any], res: dict[str, Any]) -> bool:
    """As ``_touches_payments``, looking into the template's managed policies a function refers to."""
    if _touches_payments(res):
        return True
    names = _refs(res["Properties"].get("Policies"))
    return any(_refs(doc["Resources"][n]["Properties"]) & {"PaymentsTable", "CardDataKey"}
               for n in names if doc["Resources"].get(n, {}).get("Type") == "AWS::IAM::ManagedPolicy")


# ------------------------------------------------------------------ the template's rules


def test_every_function_has_a_log_group_with_retention_a_year_where_it_touches_payments(doc: dict[str, Any]) -> None:
    groups = {}
    for name, res in _of_type(doc, "AWS::Logs::LogGroup").items():
        target = _refs(res["Properties"].get("LogGroupName"))
        groups.update({t: (name, res["Properties"]) for t in target})
    problems = []
    for fn, res in _of_type(doc, "AWS::Serverless::Function").items():
        logging = (res["Properties"].get("LoggingConfig") or {}).get("LogGroup")
        if logging:  # LoggingConfig.LogGroup: !Ref SomeLogGroup
            target = next(iter(_refs(logging)))
            found = (target, doc["Resources"][target]["Properties"])
        else:  # a log group named /aws/lambda/${Function}
            found = groups.get(fn)
        if found is None:
            problems.append(f"{fn}: no log group (add {fn}LogGroup, /aws/lambda/${{{fn}}})")
            continue
        want = "PaymentLogRetentionDays" if _touches_payments_in(doc, res) else "LogRetentionDays"
        if found[1].get("RetentionInDays") != {"Ref": want}:
            problems.append(f"{fn}: {found[0]} must keep logs for !Ref {want}")
    assert not problems, "\n".join(problems)


def test_every_stream_trigger_has_a_failure_queue_bisect_bounded_age_retries_and_a_lag_alarm(doc: dict[str, Any]) -> None:
    lag_alarmed = _alarmed(doc, "IteratorAge")
    problems = []
    triggers = 0
    for fn, res in _of_type(doc, "AWS::Serverless::Function").items():
        for event_name, event in (res["Properties"].get("Events") or {}).items():
            if event["Type"] not in ("DynamoDB", "Kinesis"):
                continue
            triggers += 1
            props = event["Properties"]
            where = f"{fn}.{event_name}"
            destination = ((props.get("DestinationConfig") or {}).get("OnFailure") or {})
            queue = next(iter(_refs(destination.get("Destination"))), None)
            if destination.get("Type") != "SQS" or queue is None or doc["Resources"][queue]["Type"] != "AWS::SQS::Queue":
                problems.append(f"{where}: no DestinationConfig.OnFailure SQS queue")
            if props.get("BisectBatchOnFunctionError") is not True:
                problems.append(f"{where}: BisectBatchOnFunctionError must be true")
            if not 60 <= int(props.get("MaximumRecordAgeInSeconds", -1)) <= 86400 - 3600:
                problems.append(f"{where}: MaximumRecordAgeInSeconds must leave time to redrive within the stream's 24 h")
            if not 0 <= int(props.get("MaximumRetryAttempts", -1)) <= 10000:
                problems.append(f"{where}: MaximumRetryAttempts must be bounded")
            if fn not in lag_alarmed:
                problems.append(f"{where}: no IteratorAge alarm on {fn}")
    assert triggers >= 2
    assert not problems, "\n".join(problems)


def test_every_queue_has_a_failure_path_and_every_failure_queue_an_alarm(doc: dict[str, Any]) -> None:
    queues = _of_type(doc, "AWS::SQS::Queue")
    dead_letter = {q for r in queues.values() for q in _refs((r["Properties"].get("RedrivePolicy") or {}).get("deadLetterTargetArn"))}
    on_failure = set()
    for res in _of_type(doc, "AWS::Serverless::Function").values():
        for event in (res["Properties"].get("Events") or {}).values():
            props = event.get("Properties") or {}
            on_failure |= _refs(((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination"))
            if event["Type"] == "SQS":
                queue = next(iter(_refs(props["Queue"])))
                assert queues[queue]["Properties"].get("RedrivePolicy"), f"{queue} feeds a function but has no DLQ"
    depth_alarmed = _alarmed(doc, "ApproximateNumberOfMessagesVisible")
    problems = []
    for name, res in queues.items():
        if name not in dead_letter | on_failure and not res["Properties"].get("RedrivePolicy"):
            problems.append(f"{name}: holds work but neither dead-letters nor is a failure queue")
        if name in dead_letter | on_failure and name not in depth_alarmed:
            problems.append(f"{name}: a failure queue without an ApproximateNumberOfMessagesVisible alarm")
    assert dead_letter and on_failure
    assert not problems, "\n".join(problems)


def test_every_stateful_resource_is_retained_on_delete_and_replacement(doc: dict[str, Any]) -> None:
    problems = [f"{name} ({res['Type']})" for name, res in doc["Resources"].items() if res["Type"] in STATEFUL
                and (res.get("DeletionPolicy") != "Retain" or res.get("UpdateReplacePolicy") != "Retain")]
    assert not problems, "DeletionPolicy and UpdateReplacePolicy must be Retain: " + ", ".join(problems)
    for name, props in ((k, v["Properties"]) for k, v in _of_type(doc, "AWS::DynamoDB::Table").items()):
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, name


def test_every_state_machine_logs_errors_and_has_a_failure_alarm(doc: dict[str, Any]) -> None:
    failed = _alarmed(doc, "ExecutionsFailed")
    for name, res in _of_type(doc, "AWS::Serverless::StateMachine").items():
        logging = res["Properties"].get("Logging") or {}
        assert logging.get("Level") in ("ERROR", "ALL"), f"{name}: Logging.Level ERROR"
        assert logging.get("IncludeExecutionData") is False, f"{name}: execution data may hold card or key material"
        assert logging.get("Destinations"), name
        assert name in failed, f"{name}: no ExecutionsFailed alarm"


# The functions that move money or deliver its events deploy through CodeDeploy (canary in prod); the rest
# switch their alias at once (a deployment group each would cost ~40 of CloudFormation's 500 resources).
CANARY_FUNCTIONS = frozenset({
    "AuthorizePaymentFunction", "SalePaymentFunction", "CapturePaymentFunction", "VoidPaymentFunction",
    "RefundPaymentFunction", "CreatePaymentIntentFunction", "ConfirmPaymentIntentFunction", "CheckoutPageFunction",
    "WebhookFanoutFunction", "WebhookDeliverFunction", "WebhookRetryFunction", "ExpiryTimersFunction", "ExpiryFunction",
    "ProcessorRecoveryFunction", "AdyenNotificationsFunction",
})


def test_alarms_notify_the_topic_and_rollback_alarms_guard_every_money_path_deploy(doc: dict[str, Any]) -> None:
    for props in _alarms(doc):
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}], props["AlarmName"]
        assert "docs/operations.md#" in props["AlarmDescription"]
    fn_globals = doc["Globals"]["Function"]
    assert fn_globals["AutoPublishAlias"] == "live"
    functions = _of_type(doc, "AWS::Serverless::Function")
    for name in CANARY_FUNCTIONS:
        preference = functions[name]["Properties"].get("DeploymentPreference")
        assert preference, f"{name} moves money: it needs a DeploymentPreference with rollback alarms"
        assert {"ApiServerErrorsAlarm", "PaymentFunctionErrorsAlarm"} <= _refs(preference["Alarms"]), name
        assert preference["Type"] == {"Ref": "DeploymentType"}, name
    for name, res in _of_type(doc, "AWS::Serverless::StateMachine").items():
        for value in (res["Properties"].get("DefinitionSubstitutions") or {}).values():
            if "Fn::GetAtt" in value:  # a function's plain ARN skips the alias, and so the canary
                assert value["Fn::GetAtt"][1] != "Arn" or doc["Resources"][value["Fn::GetAtt"][0]]["Type"] != \
                    "AWS::Serverless::Function", f"{name} calls a function without its alias"


SNAPSTART_FUNCTIONS = frozenset({
    "AuthorizePaymentFunction", "SalePaymentFunction", "CapturePaymentFunction", "VoidPaymentFunction",
    "RefundPaymentFunction", "CreatePaymentIntentFunction", "ConfirmPaymentIntentFunction",
})


def test_snapstart_is_a_parameter_off_by_default_on_the_payment_functions_and_publishes_a_version(
        doc: dict[str, Any]) -> None:
    param = doc["Parameters"]["SnapStart"]
    assert param["Default"] == "None" and param["AllowedValues"] == ["None", "PublishedVersions"]
    assert doc["Conditions"]["SnapStartOn"] == {"Fn::Equals": [{"Ref": "SnapStart"}, "PublishedVersions"]}
    assert doc["Globals"]["Function"]["AutoPublishAlias"] == "live"  # SnapStart needs published versions
    on = {"Fn::If": ["SnapStartOn", {"ApplyOn": "PublishedVersions"}, {"Ref": "AWS::NoValue"}]}
    for name, res in _of_type(doc, "AWS::Serverless::Function").items():
        props = res["Properties"]
        if name not in SNAPSTART_FUNCTIONS:
            assert "SnapStart" not in props, name
            continue
        assert props["SnapStart"] == on, name
        # switching the parameter must publish a new version: only then is a snapshot taken
        assert props["AutoPublishCodeSha256"] == {"Ref": "SnapStart"}, name
        # SnapStart excludes provisioned concurrency, EFS and ephemeral storage over 512 MB
        assert "ProvisionedConcurrencyConfig" not in props and "FileSystemConfigs" not in props, name
        assert int((props.get("EphemeralStorage") or {}).get("Size", 512)) <= 512, name
        assert (props.get("Runtime") or doc["Globals"]["Function"]["Runtime"]) in ("python3.12", "python3.13"), name


def test_api_functions_cannot_scan_credentials_and_webhook_functions_cannot_touch_card_data(doc: dict[str, Any]) -> None:
    scan = []
    for fn, res in _of_type(doc, "AWS::Serverless::Function").items():
        policies = res["Properties"].get("Policies") or []
        text = json.dumps(policies)
        if fn not in MAY_SCAN_CREDENTIALS and any(
                isinstance(p, dict) and any(k in p for k in ("DynamoDBReadPolicy", "DynamoDBCrudPolicy"))
                and "CredentialsTable" in json.dumps(p) for p in policies):
            scan.append(fn)
        if "dynamodb:Scan" in text and "CredentialsTable" in text and fn not in MAY_SCAN_CREDENTIALS:
            scan.append(fn)
        if fn in NEVER_CARD_DATA:
            assert "CardDataKey" not in text, f"{fn} may use the card key"
    assert not scan, "GetItem/Query (CredentialsReadPolicy), not a table-wide Scan: " + ", ".join(scan)
    assert doc["Resources"]["PepperSecret"]["Properties"]["KmsKeyId"] == {"Ref": "SecretsKey"}
    for key in ("CardDataKey", "SecretsKey"):
        statements = doc["Resources"][key]["Properties"]["KeyPolicy"]["Statement"]
        assert not any(s["Action"] in ("kms:*", ["kms:*"]) for s in statements), f"{key}: kms:* in its policy"


def test_the_stack_stays_under_cloudformations_500_resources(doc: dict[str, Any]) -> None:
    """What SAM expands each resource into (function: role, version, alias, log group counted apart, a deployment
    group where it has a DeploymentPreference, one permission per
    API event, one mapping per queue or stream event). Routes in TahsilApi's DefinitionBody cost nothing (the
    fallback's one permission is its own resource). CI counts exactly with SAM's translator
    (scripts/count_stack_resources.py). Near the limit, split the stack before adding functions."""
    total = 3 + 2  # the API's RestApi, Deployment, Stage; CodeDeploy's application and role
    for res in doc["Resources"].values():
        if res["Type"] == "AWS::Serverless::Function":
            events = (res["Properties"].get("Events") or {}).values()
            deployment_group = 1 if res["Properties"].get("DeploymentPreference") else 0
            total += 4 + deployment_group + sum(1 for e in events if e["Type"] in ("Api", "SQS", "DynamoDB", "Kinesis"))
        elif res["Type"] == "AWS::Serverless::StateMachine":
            total += 2
        elif res["Type"] != "AWS::Serverless::Api":
            total += 1
    assert total < 480, f"about {total} resources after the SAM transform; CloudFormation allows 500 (keep room)"


# ------------------------------------------------------------------ redrive


def _drain(queue_url: str, logical_id: str) -> int:
    """What Lambda's SQS poller does: hand the queue's messages to the function, delete the processed ones."""
    import boto3

    from tests.support.webhooks import invoke_raw

    sqs = boto3.client("sqs")
    handled = 0
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                              "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs"} for m in messages]}
        failed = {f["itemIdentifier"] for f in invoke_raw(logical_id, event)["batchItemFailures"]}
        assert not failed
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
        handled += len(messages)
    return handled


def _depth(queue_url: str) -> int:
    import boto3

    attrs = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attrs["Attributes"].values())


def test_a_dead_lettered_request_log_is_redriven_stored_once_and_removed(aws_env: dict[str, str]) -> None:
    import boto3

    from tahsil.console import redrive
    from tahsil.store import dal

    request_id = f"req_{uuid.uuid4().hex}"
    record = {"request_id": request_id, "received_at": "2026-12-01T10:00:00.000000Z", "merchant_id": "mer_x", "mode": "test",
              "method": "GET", "path": "/v1/payments", "route": "GET /v1/payments", "status": 200, "latency_ms": 12,
              "rate_limit": {}, "signature": {}, "body_sha256": "0" * 64, "api_version": "2026-01-01"}
    sqs = boto3.client("sqs")
    dlq, source = aws_env["RequestLogDLQ"], aws_env["RequestLogQueue"]
    for _ in range(2):  # dead-lettered twice (a producer retry): still one record
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(record))
    assert redrive.source_queue_of(dlq, [aws_env["WebhookDeliveryQueue"], source]) == source

    report = redrive.move_messages(dlq, source)
    assert (report.moved, report.duplicates, report.failed) == (1, 1, 0)
    assert _depth(dlq) == 0
    assert _drain(source, "RequestLogConsumerFunction") == 1
    items = boto3.client("dynamodb").scan(TableName=dal.request_logs_table())["Items"]
    stored = [i for i in items if i.get("request_id", {}).get("S") == request_id]  # beside its counters
    assert len(stored) == 1 and stored[0]["status"]["N"] == "200" and stored[0]["pk"]["S"] == "LOG#mer_x#test"
    again = redrive.move_messages(dlq, source)  # nothing left: a second run is a no-op
    assert again.moved == 0 and _depth(source) == 0


@pytest.fixture
def streams(monkeypatch: pytest.MonkeyPatch, aws_env: Any) -> Any:
    """moto's in-process mock answers DynamoDB Streams at its classic endpoint only (botocore now derives another)."""
    from tahsil.store import aws

    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", "https://streams.dynamodb.us-east-1.amazonaws.com")
    aws.reset()
    return aws_env


@pytest.fixture
def local_webhooks(monkeypatch: pytest.MonkeyPatch, streams: Any) -> Any:
    monkeypatch.setenv("TAHSIL_LOCAL_RUNTIME", "true")  # test mode may target http://127.0.0.1
    return streams


def _failure_record(function: str, records: list[dict[str, Any]], table: str) -> dict[str, Any]:
    """What Lambda puts on a stream trigger's on-failure queue when a batch exhausts its retries."""
    import boto3

    stream_arn = boto3.client("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = boto3.client("dynamodbstreams").describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
    numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
    return {"requestContext": {"requestId": str(uuid.uuid4()), "condition": "RetryAttemptsExhausted",
                               "functionArn": f"arn:aws:lambda:us-east-1:123456789012:function:{function}:live"},
            "DDBStreamBatchInfo": {"shardId": shard["ShardId"], "startSequenceNumber": numbers[0],
                                   "endSequenceNumber": numbers[-1], "batchSize": len(numbers), "streamArn": stream_arn}}


def test_a_failed_stream_batch_is_replayed_once_its_deliveries_queued_once_and_removed(
        local_webhooks: dict[str, str], merchant: dict[str, Any]) -> None:
    import boto3

    from tahsil.console import redrive
    from tahsil.store import dal
    from tahsil_local.pollers import passes
    from tahsil_local.template import load
    from tests.support.payments import authorize
    from tests.support.webhooks import create_endpoint, invoke_raw, stream_records

    key = merchant["keys"]["test"]["secret"]
    endpoint = create_endpoint(key, "http://127.0.0.1:9/hook").data
    assert authorize(key).status == 200
    records = stream_records()
    failure_queue = local_webhooks["WebhookFanoutFailureQueue"]
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=failure_queue, MessageBody=json.dumps(
        _failure_record("WebhookFanoutFunction", records, dal.payments_table())))
    filters = load()["Resources"]["WebhookFanoutFunction"]["Properties"]["Events"]["Outbox"]["Properties"][
        "FilterCriteria"]["Filters"]
    calls: list[int] = []

    def invoke_fanout(function_arn: str, event: dict[str, Any]) -> Any:
        assert ":function:WebhookFanoutFunction:" in function_arn
        calls.append(len(event["Records"]))
        return invoke_raw("WebhookFanoutFunction", event)

    report = redrive.replay_stream_failures(failure_queue, invoke_fanout, keep=lambda r: passes(filters, r))
    assert (report.replayed, report.failed, report.expired) == (1, 0, 0)
    assert calls == [1]  # only the event row passes the trigger's filter; the payment row is not handed over
    assert _depth(failure_queue) == 0
    queued = sqs.receive_message(QueueUrl=local_webhooks["WebhookDeliveryQueue"], MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["endpoint_id"] for m in queued] == [endpoint["id"]]
    assert [json.loads(m["Body"])["of"] for m in queued] == [1]  # the first attempt creates the delivery row
    event_id = next(r["dynamodb"]["Keys"]["sk"]["S"] for r in records if r["dynamodb"]["Keys"]["pk"]["S"].startswith("EVTS#"))
    assert dal.query_partition(dal.payments_table(), f"EVT#{event_id}", "DLV#") == []  # fan-out writes nothing
    assert redrive.replay_stream_failures(failure_queue, invoke_fanout).replayed == 0  # nothing left
    assert calls == [1]


def test_a_batch_that_fails_again_stays_on_its_failure_queue(local_webhooks: dict[str, str], merchant: dict[str, Any]) -> None:
    import boto3

    from tahsil.console import redrive
    from tahsil.store import dal
    from tests.support.payments import authorize
    from tests.support.webhooks import stream_records

    authorize(merchant["keys"]["test"]["secret"])
    failure_queue = local_webhooks["ExpiryTimersFailureQueue"]
    boto3.client("sqs").send_message(QueueUrl=failure_queue, MessageBody=json.dumps(
        _failure_record("ExpiryTimersFunction", stream_records(), dal.payments_table())))

    def still_broken(function_arn: str, event: dict[str, Any]) -> Any:
        return {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["dynamodb"]["SequenceNumber"]}]}

    report = redrive.replay_stream_failures(failure_queue, still_broken, visibility=0)
    assert (report.replayed, report.failed) == (0, 1)
    assert _depth(failure_queue) == 1  # kept for the next run, never dropped


def test_the_cli_finds_every_failure_queue_in_the_template(doc: dict[str, Any]) -> None:
    from tahsil_local.cli import failure_paths

    paths = failure_paths(doc)
    assert paths["WebhookDeliveryDLQ"] == {"kind": "dlq", "source": "WebhookDeliveryQueue"}
    assert paths["RequestLogDLQ"] == {"kind": "dlq", "source": "RequestLogQueue"}
    assert paths["WebhookFanoutFailureQueue"]["function"] == "WebhookFanoutFunction"
    assert paths["ExpiryTimersFailureQueue"]["function"] == "ExpiryTimersFunction"


def test_the_local_stream_poller_describes_an_exhausted_batch_on_the_failure_queue(streams: dict[str, str]) -> None:
    import boto3

    from tahsil.store import dal
    from tahsil_local.pollers import StreamPoller

    class Failing:
        fn = type("Fn", (), {"logical_id": "WebhookFanoutFunction"})()

        def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
            return {"batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in event["Records"]]}

    dal.put(dal.payments_table(), {"pk": "EVT#evt_1", "sk": "EVT", "type": "payment.authorized"})
    queue = streams["WebhookFanoutFailureQueue"]
    poller = StreamPoller(Failing(), dal.payments_table(), 10, None, on_failure_url=queue, max_retries=1)  # type: ignore[arg-type]
    started = time.monotonic()
    assert poller.poll() is False  # the first failure: retried
    assert poller.poll() is True  # the retry fails too: described, and the poller moves on
    assert time.monotonic() - started < 10
    body = json.loads(boto3.client("sqs").receive_message(QueueUrl=queue)["Messages"][0]["Body"])
    assert body["requestContext"]["functionArn"].endswith(":function:WebhookFanoutFunction:live")
    assert body["DDBStreamBatchInfo"]["batchSize"] == 1
    assert poller.poll() is False  # nothing after it


def test_card_numbers_and_secrets_are_sealed_under_separate_keys(aws_env: dict[str, str]) -> None:
    from botocore.exceptions import ClientError

    from tahsil.store import crypto

    assert aws_env["CardDataKey"] != aws_env["SecretsKey"]
    card = crypto.vault.encrypt("4242424242424242", context="mer_1/pay_1")
    secret = crypto.secrets_vault.encrypt("whsec_abc", context="webhook/we_1")
    assert crypto.CardVault("secrets").decrypt(secret, context="webhook/we_1") == "whsec_abc"
    with pytest.raises(ClientError) as refused:  # what a webhook function holds cannot open a card number
        crypto.CardVault("secrets").decrypt(card, context="mer_1/pay_1")
    # AWS answers IncorrectKeyException, moto AccessDeniedException: either way, no plaintext
    assert refused.value.response["Error"]["Code"] in ("IncorrectKeyException", "AccessDeniedException")


def test_every_checkov_skip_gives_its_reason(doc: dict[str, Any]) -> None:
    """`make test` runs checkov with these skips (scripts/check_template.py); each must say why."""
    import importlib.util

    from tests.support.lambdas import ROOT

    spec = importlib.util.spec_from_file_location("check_template", ROOT / "scripts" / "check_template.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    wide, problems = module.skips(doc)
    assert not problems, problems
    assert len(wide) == len(set(wide)) and all(w.startswith("CKV_") for w in wide)
    reasonless = {"Metadata": {"Checkov": {"SkipChecks": [{"id": "CKV_AWS_1"}]}}, "Resources": {}}
    assert module.skips(reasonless)[1]  # and a skip without a reason is caught


def test_a_dead_lettered_delivery_is_redriven_and_delivered_once_even_if_dead_lettered_twice(
        local_webhooks: dict[str, str], merchant: dict[str, Any]) -> None:
    import boto3

    from tahsil.console import redrive
    from tahsil_local.pollers import passes
    from tahsil_local.template import load
    from tests.support.payments import authorize
    from tests.support.webhooks import Receiver, create_endpoint, invoke_raw, stream_records

    receiver = Receiver()
    try:
        key = merchant["keys"]["test"]["secret"]
        create_endpoint(key, receiver.url, ["payment.authorized"])
        authorize(key)
        filters = load()["Resources"]["WebhookFanoutFunction"]["Properties"]["Events"]["Outbox"]["Properties"][
            "FilterCriteria"]["Filters"]
        invoke_raw("WebhookFanoutFunction", {"Records": [r for r in stream_records() if passes(filters, r)]})
        sqs = boto3.client("sqs")
        source, dlq = local_webhooks["WebhookDeliveryQueue"], local_webhooks["WebhookDeliveryDLQ"]
        queued = sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=10)["Messages"]
        assert len(queued) == 1
        for _ in range(2):  # the deliver function kept crashing on it: dead-lettered (twice, by a retried move)
            sqs.send_message(QueueUrl=dlq, MessageBody=queued[0]["Body"])
        sqs.delete_message(QueueUrl=source, ReceiptHandle=queued[0]["ReceiptHandle"])

        report = redrive.move_messages(dlq, source)
        assert (report.moved, report.duplicates) == (1, 1)
        assert _drain(source, "WebhookDeliverFunction") == 1
        assert len(receiver.delivered()) == 1
        sqs.send_message(QueueUrl=dlq, MessageBody=queued[0]["Body"])  # and once more, in a later run
        assert redrive.move_messages(dlq, source).moved == 1
        assert _drain(source, "WebhookDeliverFunction") == 1
        assert len(receiver.delivered()) == 1  # the attempt was recorded: never sent twice
        assert _depth(dlq) == 0 and _depth(source) == 0
    finally:
        receiver.stop()


def test_api_access_logs_are_json_with_ids_route_status_latency_and_nothing_secret(doc: dict[str, Any]) -> None:
    api = doc["Resources"]["TahsilApi"]["Properties"]
    fields = json.loads(api["AccessLogSetting"]["Format"])
    assert {"requestId", "route", "status", "latencyMs", "ip"} <= fields.keys()
    values = " ".join(fields.values())
    for forbidden in ("$input", "header", "querystring", "$context.authorizer.claims", "$util"):
        assert forbidden not in values.lower(), forbidden  # no key, secret or card number can reach the log
    settings = api["MethodSettings"][0]
    assert settings["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert settings["DataTraceEnabled"] is False  # execution logs with bodies stay off
    assert doc["Parameters"]["WafEnabled"]["Default"] == "false"
    assert doc["Resources"]["ApiWebAcl"]["Condition"] == "WafOn"


def test_a_card_data_key_is_bound_to_its_merchant(aws_env: dict[str, str], doc: dict[str, Any]) -> None:
    from botocore.exceptions import ClientError

    from tahsil.store import crypto

    sealed = crypto.vault.encrypt("4242424242424242", context="mer_a/pay_1", merchant="mer_a")
    assert sealed["merchant"] == "mer_a"
    assert crypto.CardVault("card").decrypt(sealed, context="mer_a/pay_1") == "4242424242424242"
    with pytest.raises(ClientError):  # KMS refuses the data key under another merchant's context
        crypto.CardVault("card").decrypt({**sealed, "merchant": "mer_b"}, context="mer_a/pay_1")
    other = crypto.vault.encrypt("4000056655665556", context="mer_b/pay_2", merchant="mer_b")
    assert other["wrapped_key"] != sealed["wrapped_key"]  # one data key per merchant
    use = next(s for s in doc["Resources"]["CardDataKey"]["Properties"]["KeyPolicy"]["Statement"]
               if "kms:Decrypt" in s["Action"])
    assert use["Condition"]["Null"] == {"kms:EncryptionContext:tahsil:merchant": "false"}


def test_every_alarm_links_to_its_runbook_entry(doc: dict[str, Any]) -> None:
    import re

    from tests.support.lambdas import ROOT

    runbook = (ROOT / "docs" / "operations.md").read_text()
    anchors = {h.lower() for h in re.findall(r"^### (\w+)\s*$", runbook, re.M)}
    anchors |= set(re.findall(r'<a id="([a-z0-9]+)"></a>', runbook))
    missing = [props["AlarmDescription"].rsplit("#", 1)[1] for props in _alarms(doc)
               if props["AlarmDescription"].rsplit("#", 1)[1] not in anchors]
    assert not missing, f"docs/operations.md has no entry for: {missing}"


def test_redrive_against_a_deployed_stack_finds_its_queues_through_cloudformation(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`--stack S`: queue URLs are the stack's physical resource ids (a stack in moto's CloudFormation)."""
    import boto3
    from moto import mock_aws

    from tahsil.kernel import config
    from tahsil.store import aws
    from tahsil_local import aws as local_aws
    from tahsil_local.cli import main

    for name, value in local_aws.FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    stack = {
        "Resources": {
            "RequestLogDLQ": {"Type": "AWS::SQS::Queue"},
            "RequestLogQueue": {"Type": "AWS::SQS::Queue", "Properties": {"RedrivePolicy": {
                "deadLetterTargetArn": {"Fn::GetAtt": ["RequestLogDLQ", "Arn"]}, "maxReceiveCount": 5}}},
        },
        "Outputs": {name: {"Value": "unused"} for name in (
            "PaymentsTableName", "IdempotencyTableName", "CredentialsTableName", "CardDataKeyId", "PepperSecretArn")},
    }
    saved = dict(os.environ)  # `--stack` points this process's environment at the stack (as the CLI does)
    with mock_aws():
        aws.reset()
        cfn = boto3.client("cloudformation", region_name="us-east-1")
        cfn.create_stack(StackName="tahsil-test", TemplateBody=json.dumps(stack))
        url = {r["LogicalResourceId"]: r["PhysicalResourceId"]
               for r in cfn.describe_stack_resources(StackName="tahsil-test")["StackResources"]}
        sqs = boto3.client("sqs", region_name="us-east-1")
        sqs.send_message(QueueUrl=url["RequestLogDLQ"], MessageBody='{"request_id": "req_1"}')
        try:
            code = main(["ops", "redrive", "--stack", "tahsil-test", "--region", "us-east-1", "--queue", "RequestLogDLQ"])
        finally:
            os.environ.clear()
            os.environ.update(saved)
            config.settings.cache_clear()
        assert code == 0
        report = json.loads(capsys.readouterr().out)
        assert report == [{"queue": "RequestLogDLQ", "kind": "dlq", "moved": 1, "replayed": 0, "records": 0,
                           "duplicates": 0, "failed": 0, "expired": 0}]
        moved = sqs.receive_message(QueueUrl=url["RequestLogQueue"])["Messages"]
        assert [m["Body"] for m in moved] == ['{"request_id": "req_1"}']
        aws.reset()
