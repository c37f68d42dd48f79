"""``tahsil``: run the gateway locally, create merchants, and keep the OpenAPI document current.

    tahsil dev [--fake-adyen] [--log-format json]
                                       start the local gateway on 127.0.0.1:3000 (TAHSIL_PORT); --fake-adyen (or
                                       TAHSIL_FAKE_ADYEN=1): the demo merchant's live payments go to a fake Adyen
    tahsil merchants create --name N [--api-version V]   create a merchant and its first keys
                                       (--local: the running local gateway; --stack S: a deployed stack)
    tahsil merchants limits ID --set payments.per_second=40 [--set ...]
                                       override a merchant's rate limits (same --local / --stack)
    tahsil merchants connector ID adyen --merchant-account A --api-key-env VAR --hmac-key-env VAR
                                       a merchant's live processor connector (--environment, --live-url-prefix;
                                       --base-url for a local fake Adyen; `none` removes it; same --local / --stack)
    tahsil go-live approve|reject ID   decide a merchant's pending go-live review (--reason, --force; --local / --stack)
    tahsil users create --merchant-id ID --email E [--role owner|developer|viewer]
                                       a dashboard user (Cognito) for a merchant (same --local / --stack)
    tahsil ops redrive [--queue Q ...] replay dead-letter and stream-failure queues (same --local / --stack)
    tahsil listen [--events T,..]      receive, verify and print the local gateway's webhooks
    tahsil env [--port P]              print the running local gateway's address and demo keys as shell exports:
                                       eval "$(.venv/bin/tahsil env)"
    tahsil openapi [--check]           write docs/openapi.json from the code (or check it is current)
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from tahsil_local.template import ROOT

DEFAULT_PORT = 3000


def _state_dir() -> Path:
    return Path(os.environ.get("TAHSIL_STATE_DIR", ROOT / ".tahsil"))


def state_file_for(port: int) -> Path:
    """One state file per running gateway: ``.tahsil/dev-<port>.json``, removed when it stops."""
    return _state_dir() / f"dev-{port}.json"


def _running_state_file() -> Path:
    """The gateway on TAHSIL_PORT (default 3000); else the only one running."""
    port = int(os.environ.get("TAHSIL_PORT", DEFAULT_PORT))
    wanted = state_file_for(port)
    if wanted.exists():
        return wanted
    others = sorted(_state_dir().glob("dev-*.json"))
    if len(others) == 1:
        return others[0]
    if others:
        ports = ", ".join(p.stem.removeprefix("dev-") for p in others)
        raise SystemExit(f"no local gateway on port {port}; gateways are running on ports {ports}: "
                         f"set TAHSIL_PORT to one of them")
    raise SystemExit(f"no local gateway state at {wanted}; start one with `make run` (or `tahsil dev`)")


def _port_in_use(host: str, port: int) -> str:
    return (f"tahsil dev: port {port} on {host} is already in use (another `make run`?).\n"
            f"Stop that one, or start this one on another port:  TAHSIL_PORT={port + 1} make run\n"
            f"Each gateway writes its keys to {_state_dir()}/dev-<port>.json.")


def dev(port: int, host: str = "127.0.0.1", verbose: bool = False, fake_adyen: bool = False) -> int:
    from tahsil_local import aws, moto_fixes, pollers, runtime, template
    from tahsil_local.gateway import GatewayServer, Router
    from tahsil_local.runtime import FunctionPool

    moto_fixes.install()
    doc = template.load()
    functions = template.functions(doc)
    try:  # take the port first: a second `make run` on it says so at once, before starting anything
        server = GatewayServer((host, port), Router([], {}), verbose=verbose,  # its routes once the pools exist
                               control=os.environ.get("TAHSIL_LOCAL_CONTROL", "") in ("1", "true"))
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            print(_port_in_use(host, port), file=sys.stderr, flush=True)
            return 2
        raise
    moto = aws.MotoServer(host)
    aws.use_endpoint(moto.start())
    os.environ["MOTO_PORT"] = str(moto.port)  # moto's Step Functions executor calls back to its server
    pools: dict[str, FunctionPool] = {}  # filled once the resources exist (their names are the variables)
    pollers.route_lambda_invocations(pools)
    refs = aws.create_resources(doc)
    pollers.create_state_machines(doc, refs, ROOT)

    base_url = f"http://{host}:{server.server_address[1]}"
    per_function = {fn.logical_id: {name: aws.resolve(value, refs) for name, value in fn.environment.items()}
                    for fn in functions}
    env: dict[str, str] = {}
    for variables in per_function.values():
        env.update(variables)
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    local = {"PUBLIC_BASE_URL": base_url,
             "TAHSIL_LOCAL_RUNTIME": "true"}  # test mode may send webhooks to http://localhost
    # Each execution environment (a process) sees its own function's variables, as in Lambda;
    # this process (the operator's commands below) sees them all.
    inherited = runtime.base_variables(per_function)
    for fn in functions:
        pools[fn.logical_id] = FunctionPool(fn, {**inherited, **per_function[fn.logical_id], **local})
    server.router = Router(functions, pools, base_paths=template.base_paths(doc))
    server.pools = pools
    os.environ.update(env)
    os.environ.update(local)

    from tahsil.console import ops
    from tahsil.identity import users

    merchant = ops.create_merchant("Demo Store")
    dashboard = {"url": f"{base_url}/dashboard", "username": DEMO_USER, "password": _demo_password()}
    users.create_user(DEMO_USER, merchant["merchant_id"], temporary_password=dashboard["password"], permanent=True,
                        role="owner")
    state = {
        "base_url": base_url,
        "merchant_id": merchant["merchant_id"],
        "keys": merchant["keys"],
        "dashboard": dashboard,
        "aws_endpoint_url": moto.url,
        "region": aws.REGION,
        "environment": {k: v for k, v in env.items() if not k.startswith("POWERTOOLS_")},
    }
    adyen = None
    if fake_adyen:
        adyen = _start_fake_adyen(merchant["merchant_id"], base_url)
        state["fake_adyen"] = {"url": adyen.url, "control_url": adyen.control_url, "notify_url": adyen.notify_url,
                               "merchant_account": adyen.merchant_account, "api_key": adyen.api_key,
                               "hmac_key": adyen.hmac_key}
    state_dir = _state_dir()
    state_dir.mkdir(parents=True, exist_ok=True)
    state_file = state_file_for(server.server_address[1])  # this gateway holds the port, so the file is its own
    fd = os.open(state_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(state, indent=2))
    os.chmod(state_file, 0o600)

    keys = merchant["keys"]
    print(f"""
Tahsil is running at {base_url}   (AWS emulated by moto at {moto.url})

  Demo merchant  {merchant['merchant_id']}
  Test secret    {keys['test']['secret']}
  Test public    {keys['test']['publishable']}
  Live secret    {keys['live']['secret']}
  Live public    {keys['live']['publishable']}

  Dashboard      {dashboard['url']}
    sign in as   {dashboard['username']}
    password     {dashboard['password']}
{_fake_adyen_banner(adyen)}
  These keys and the password are shown once; they are also in {state_file}
  (removed when this gateway stops).
  Try:  curl -s {base_url}/v1/payments -H "X-API-Key: {keys['test']['secret']}"

Ctrl-C stops it.""", flush=True)

    stop = threading.Event()

    def _terminate(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _terminate)
    serving = threading.Thread(target=server.serve_forever, name="gateway", daemon=True)
    serving.start()
    running = pollers.start(functions, pools, refs)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    print("\nstopping...", flush=True)
    for poller in running:
        poller.stop()
    server.shutdown()
    server.server_close()
    for pool in pools.values():
        pool.stop()
    if adyen is not None:
        adyen.stop()
    moto.stop()
    state_file.unlink(missing_ok=True)  # its keys died with it
    return 0


DEMO_USER = "demo@tahsil.local"


def _start_fake_adyen(merchant_id: str, base_url: str) -> Any:
    """``tahsil dev --fake-adyen``: a fake Adyen on 127.0.0.1 (a free port) as the demo merchant's live connector,
    its notifications delivered to this gateway, and the demo merchant's go-live approved (a forced approval,
    with its reason on record) so that its live key can take payments at once."""
    from tahsil.console import golive
    from tahsil.kernel.principal import ALL_SCOPES, Principal
    from tahsil_local import fake_adyen

    operator = "tahsil dev --fake-adyen"
    adyen = fake_adyen.attach(merchant_id, f"{base_url}/connectors/adyen/{merchant_id}/notifications",
                              operator=operator)
    demo = Principal(merchant_id=merchant_id, mode="test", key_id="tahsil-dev", key_type="secret", scopes=ALL_SCOPES)
    golive.request_review(demo, note="local demo with the fake Adyen")
    golive.approve(merchant_id, operator=operator, force=True,
                   reason="local demo: live payments go to a fake Adyen on 127.0.0.1")
    return adyen


def _fake_adyen_banner(adyen: Any) -> str:
    if adyen is None:
        return ""
    return f"""
  Fake Adyen     {adyen.url}   (live mode: the demo merchant's connector; go-live approved for the demo)
    switches     {adyen.control_url}   (GET: state; POST /faults, /notifications, /refusals, /reset)
    live payments use a non-test card, e.g. 4111 1111 1111 1111; holder name "Not enough balance" is refused
"""


def _demo_password() -> str:
    """Meets the pool's policy (12+ characters, upper, lower, digit); random for each run."""
    import secrets

    return "Tahsil-" + secrets.token_urlsafe(12).replace("-", "x").replace("_", "y") + "7a"


def _use_local_state() -> None:
    state = json.loads(_running_state_file().read_text())
    from tahsil_local import aws

    aws.use_endpoint(state["aws_endpoint_url"])
    os.environ.update(state["environment"])


def _use_stack(stack: str, region: str | None) -> None:
    import boto3

    cfn = boto3.client("cloudformation", region_name=region)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]}
    os.environ.update({
        "PAYMENTS_TABLE": outputs["PaymentsTableName"],
        "IDEMPOTENCY_TABLE": outputs["IdempotencyTableName"],
        "CREDENTIALS_TABLE": outputs["CredentialsTableName"],
        "CARD_KEY_ID": outputs["CardDataKeyId"],
        "PEPPER_SECRET_ID": outputs["PepperSecretArn"],
        "CONNECTOR_SECRET_PREFIX": f"tahsil/{stack_stage(outputs)}/connectors/",
    })
    if region:
        os.environ["AWS_DEFAULT_REGION"] = region
    if "SecretsKeyId" in outputs:
        os.environ["SECRETS_KEY_ID"] = outputs["SecretsKeyId"]
    if "ConnectorSecretsKeyId" in outputs:
        os.environ["CONNECTOR_SECRETS_KEY_ID"] = outputs["ConnectorSecretsKeyId"]
    if "DashboardUserPoolId" in outputs:
        os.environ["COGNITO_USER_POOL_ID"] = outputs["DashboardUserPoolId"]
        os.environ["COGNITO_CLIENT_ID"] = outputs["DashboardUserPoolClientId"]


def stack_stage(outputs: dict[str, str]) -> str:
    """The deployed stage, from the API URL's last path segment (https://.../<stage>)."""
    return outputs.get("ApiUrl", "/dev").rstrip("/").rsplit("/", 1)[-1]


def merchant_connector(args: argparse.Namespace) -> int:
    """Set (or remove) a merchant's live processor connector. Credentials are read from environment variables
    named on the command line (never from argv, which other users of the machine can see) and stored only in
    Secrets Manager."""
    _where(args)
    import getpass

    from tahsil.connectors import settings
    from tahsil.kernel.errors import TahsilError

    operator = args.operator or os.environ.get("TAHSIL_OPERATOR") or getpass.getuser()
    try:
        if args.connector == "none":
            result = settings.remove(args.merchant_id, "live")
        else:
            def secret(var: str | None, what: str) -> str:
                if not var or not os.environ.get(var):
                    raise SystemExit(f"tahsil merchants connector: set the {what} in an environment variable and name it "
                                     f"with --{what.replace(' ', '-')}-env")
                return os.environ[var]

            result = settings.configure(
                args.merchant_id, mode="live", connector=args.connector, operator=operator,
                merchant_account=args.merchant_account, api_key=secret(args.api_key_env, "api key"),
                hmac_key=secret(args.hmac_key_env, "hmac key"), environment=args.environment,
                live_url_prefix=args.live_url_prefix, base_url=args.base_url)
    except TahsilError as exc:
        raise SystemExit(f"tahsil merchants connector: {exc.message}") from None
    print(json.dumps(result, indent=2))
    return 0


def create_merchant(args: argparse.Namespace) -> int:
    if args.stack:
        _use_stack(args.stack, args.region)
    else:
        _use_local_state()
    from tahsil.console import ops
    from tahsil.kernel.errors import TahsilError

    try:
        created = ops.create_merchant(args.name, api_version=args.api_version)
    except TahsilError as exc:
        raise SystemExit(f"tahsil merchants create: {exc.message}") from None
    print(json.dumps(created, indent=2))
    print("The keys above are shown once; store them now.", file=sys.stderr)
    return 0


def merchant_limits(args: argparse.Namespace) -> int:
    """Per-merchant rate-limit overrides: ``--set <class>.<per_second|per_hour>=<n>`` (tahsil.identity.account.set_rate_limits)."""
    overrides: dict[str, dict[str, int]] = {}
    for item in args.set:
        name, _, value = item.partition("=")
        rate_class, _, window = name.partition(".")
        if not value.isdigit() or not window:
            raise SystemExit(f"--set {item!r}: expected <class>.<per_second|per_hour>=<positive integer>")
        overrides.setdefault(rate_class, {})[window] = int(value)
    if args.stack:
        _use_stack(args.stack, args.region)
    else:
        _use_local_state()
    from tahsil.identity import account
    from tahsil.kernel.errors import TahsilError

    try:
        print(json.dumps(account.set_rate_limits(args.merchant_id, overrides), indent=2))
    except TahsilError as exc:
        raise SystemExit(f"tahsil merchants limits: {exc.message}") from None
    return 0


def _where(args: argparse.Namespace) -> None:
    if args.stack:
        _use_stack(args.stack, args.region)
    else:
        _use_local_state()


def go_live(args: argparse.Namespace) -> int:
    """Decide a merchant's pending go-live review: approve (live keys may then create payments) or reject."""
    _where(args)
    import getpass

    from tahsil.console import golive
    from tahsil.kernel.errors import NotFound, TahsilError

    operator = args.operator or os.environ.get("TAHSIL_OPERATOR") or getpass.getuser()
    try:
        if args.decision == "approve":
            result = golive.approve(args.merchant_id, operator=operator, force=args.force, reason=args.reason)
        else:
            result = golive.reject(args.merchant_id, operator=operator, reason=args.reason or "")
    except NotFound as exc:
        raise SystemExit(f"tahsil go-live {args.decision}: {exc.message}{_review_hint(args.merchant_id)}") from None
    except TahsilError as exc:
        raise SystemExit(f"tahsil go-live {args.decision}: {exc.message}") from None
    print(json.dumps(result, indent=2))
    return 0


def _review_hint(merchant_id: str) -> str:
    """What to do when there is no review to decide: the merchant asks for one first."""
    from tahsil.store import dal

    merchant = dal.get(dal.credentials_table(), f"MER#{merchant_id}", "MER")
    if merchant is None:
        return ""  # no such merchant: the message says so
    if merchant.get("live_enabled"):
        return "\nLive payments are already enabled for this merchant: there is nothing to approve."
    return ("\nAn operator decides a review the merchant has asked for. Ask for one first, as the merchant: the "
            "dashboard's Go-live page (Request review), or, with one of its keys:\n"
            "  curl -s -X POST $TAHSIL_URL/v1/go-live/reviews -H \"X-API-Key: $TAHSIL_KEY\" "
            "-H \"Content-Type: application/json\" -d '{}'\n"
            "(`eval \"$(.venv/bin/tahsil env)\"` sets TAHSIL_URL and TAHSIL_KEY for the local demo merchant.)\n"
            f"Then run this again; while checklist items fail (GET /v1/go-live), approve with "
            f"--force --reason \"…\":\n  .venv/bin/tahsil go-live approve {merchant_id} --force --reason \"…\"")


def env(args: argparse.Namespace) -> int:
    """The running local gateway as shell exports (``eval "$(tahsil env)"``): whichever port it was started on,
    later commands in that shell use its address and the demo merchant's keys."""
    import shlex
    from urllib.parse import urlsplit

    state_file = state_file_for(args.port) if args.port else _running_state_file()
    if not state_file.exists():
        raise SystemExit(f"tahsil env: no local gateway on port {args.port} ({state_file} does not exist); "
                         f"start one with `make run`")
    state = json.loads(state_file.read_text())
    keys = state["keys"]
    exports = {
        "TAHSIL_PORT": str(urlsplit(state["base_url"]).port),
        "TAHSIL_URL": state["base_url"],
        "TAHSIL_MERCHANT_ID": state["merchant_id"],
        "TAHSIL_KEY": keys["test"]["secret"],
        "TAHSIL_PUBLISHABLE_KEY": keys["test"]["publishable"],
        "TAHSIL_LIVE_KEY": keys["live"]["secret"],
        "TAHSIL_LIVE_PUBLISHABLE_KEY": keys["live"]["publishable"],
    }
    if state.get("dashboard"):
        exports["TAHSIL_DASHBOARD_URL"] = state["dashboard"]["url"]
    print(f"# the local gateway at {state['base_url']} ({state_file}); TAHSIL_KEY is the demo merchant's test key")
    for name, value in exports.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def create_user(args: argparse.Namespace) -> int:
    """A dashboard user for a merchant, with a temporary password to change at first sign-in."""
    _where(args)
    import secrets

    from tahsil.identity import users
    from tahsil.kernel.errors import TahsilError
    from tahsil.store import dal

    if dal.get(dal.credentials_table(), f"MER#{args.merchant_id}", "MER") is None:
        raise SystemExit(f"tahsil users create: no merchant {args.merchant_id}")
    password = "Tmp-" + secrets.token_urlsafe(12).replace("-", "x").replace("_", "y") + "9Z"
    try:
        made = users.create_user(args.email, args.merchant_id, temporary_password=password, role=args.role)
    except TahsilError as exc:
        raise SystemExit(f"tahsil users create: {exc.message}") from None
    print(json.dumps({**made, "temporary_password": password}, indent=2))
    print("The temporary password is shown once; the user chooses a new one at first sign-in.", file=sys.stderr)
    return 0


def set_role(args: argparse.Namespace) -> int:
    """Change a dashboard user's role (operators): owner, developer or viewer. The user's sessions end."""
    _where(args)
    from tahsil.identity import users
    from tahsil.kernel.errors import TahsilError

    try:
        changed = users.set_role(args.email, args.role, merchant_id=args.merchant_id)
    except TahsilError as exc:
        raise SystemExit(f"tahsil users set-role: {exc.message}") from None
    print(json.dumps(changed, indent=2))
    return 0


def verify_payout(args: argparse.Namespace) -> int:
    """Mark a merchant's payout destination verified, after checking out of band that the account is theirs."""
    _where(args)
    import getpass

    from tahsil.console import profile
    from tahsil.kernel.errors import TahsilError

    operator = args.operator or os.environ.get("TAHSIL_OPERATOR") or getpass.getuser()
    try:
        result = profile.verify_payout(args.merchant_id, operator=operator, reason=args.reason or "",
                                       payout_id=args.payout_id)
    except TahsilError as exc:
        raise SystemExit(f"tahsil merchants verify-payout: {exc.message}") from None
    print(json.dumps(result, indent=2))
    return 0


def audit(args: argparse.Namespace) -> int:
    """A merchant's audit trail (payout changes and verifications), newest first."""
    _where(args)
    from tahsil.console import profile

    print(json.dumps(profile.audit_trail(args.merchant_id, args.limit), indent=2, default=str))
    return 0


def failure_paths(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The template's failure queues: each DLQ with its source queue, each stream trigger's on-failure queue
    with its function and filters. Read from template.yaml, so a new queue or trigger is covered unasked."""
    from tahsil_local import template

    paths: dict[str, dict[str, Any]] = {}
    for name, props in template.resources(doc, "AWS::SQS::Queue").items():
        target = (props.get("RedrivePolicy") or {}).get("deadLetterTargetArn")
        if isinstance(target, dict) and "Fn::GetAtt" in target:
            paths[target["Fn::GetAtt"][0]] = {"kind": "dlq", "source": name}
    for fn in template.functions(doc):
        for event in fn.raw_events.values():
            props = event.get("Properties") or {}
            destination = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
            if event["Type"] in ("DynamoDB", "Kinesis") and isinstance(destination, dict) and "Fn::GetAtt" in destination:
                paths[destination["Fn::GetAtt"][0]] = {"kind": "stream", "function": fn.logical_id,
                                                       "filters": (props.get("FilterCriteria") or {}).get("Filters")}
    return paths


def redrive(args: argparse.Namespace) -> int:
    """Replay the failure queues (all, or --queue): DLQ messages go back to their source queue; failed stream
    batches are read back from the stream and handed to their function again (tahsil.console.redrive)."""
    import boto3

    from tahsil_local import template
    from tahsil_local.pollers import passes

    doc = template.load()
    paths = failure_paths(doc)
    chosen = args.queue or sorted(paths)
    unknown = [q for q in chosen if q not in paths]
    if unknown:
        raise SystemExit(f"tahsil ops redrive: not a failure queue of template.yaml: {', '.join(unknown)} "
                         f"(choose from {', '.join(sorted(paths))})")
    _where(args)
    from tahsil.console import redrive as ops_redrive

    pools: dict[str, Any] = {}  # local execution environments, stopped when the command ends
    if args.stack:
        cfn = boto3.client("cloudformation", region_name=args.region)

        def url_of(logical_id: str) -> str:
            return cfn.describe_stack_resource(StackName=args.stack, LogicalResourceId=logical_id)[
                "StackResourceDetail"]["PhysicalResourceId"]

        lam = boto3.client("lambda", region_name=args.region)

        def invoke(function_arn: str, event: dict[str, Any]) -> dict[str, Any] | None:
            answer = lam.invoke(FunctionName=function_arn, Payload=json.dumps(event).encode())
            payload = answer["Payload"].read()
            if answer.get("FunctionError"):
                raise RuntimeError(f"{function_arn} failed: {payload[:500]!r}")
            return json.loads(payload or b"null")
    else:
        from tahsil_local import aws
        from tahsil_local.runtime import FunctionPool

        sqs = boto3.client("sqs", region_name=aws.REGION)

        def url_of(logical_id: str) -> str:
            return sqs.get_queue_url(QueueName=f"tahsil-local-{logical_id}")["QueueUrl"]

        pools.update({fn.logical_id: FunctionPool(fn) for fn in template.functions(doc)})

        def invoke(function_arn: str, event: dict[str, Any]) -> dict[str, Any] | None:
            return pools[function_arn.split(":function:")[-1].split(":")[0]].invoke(event)

    reports = []
    try:
        for queue in chosen:
            path = paths[queue]
            if path["kind"] == "dlq":
                report = ops_redrive.move_messages(url_of(queue), url_of(path["source"]), limit=args.limit)
            else:
                filters = path["filters"]
                report = ops_redrive.replay_stream_failures(url_of(queue), invoke, limit=args.limit,
                                                            keep=lambda r, f=filters: passes(f, r))
            reports.append({**report.as_dict(), "queue": queue, "kind": path["kind"]})
    finally:
        for pool in pools.values():
            pool.stop()  # the local environments are processes: none outlives the command
    print(json.dumps(reports, indent=2))
    return 1 if any(r.get("failed") or r.get("expired") for r in reports) else 0


def listen(args: argparse.Namespace) -> int:
    from tahsil_local.listen import listen as run

    state_file = _running_state_file()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    return run(json.loads(state_file.read_text()), args.port, args.events.split(","), args.forward_to, stop)


def openapi(args: argparse.Namespace) -> int:
    from tahsil_local import openapi as spec

    current = spec.generate()
    if args.check:
        stale = [str(p) for p in spec.OUTPUTS if not p.exists() or p.read_text() != current]
        if stale:
            print("OpenAPI document is stale; run `tahsil openapi`: " + ", ".join(stale), file=sys.stderr)
            return 1
        return 0
    for path in spec.OUTPUTS:
        path.write_text(current)
    print("wrote " + ", ".join(str(p.relative_to(ROOT)) for p in spec.OUTPUTS))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tahsil", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_dev = sub.add_parser("dev", help="run the local gateway")
    p_dev.add_argument("--port", type=int, default=int(os.environ.get("TAHSIL_PORT", DEFAULT_PORT)))
    p_dev.add_argument("--verbose", action="store_true", help="log every request")
    p_dev.add_argument("--fake-adyen", action="store_true", default=os.environ.get("TAHSIL_FAKE_ADYEN", "") not in ("", "0"),
                       help="route the demo merchant's live payments through a fake Adyen on 127.0.0.1, approve its "
                            "go-live, and deliver the fake's notifications here (also TAHSIL_FAKE_ADYEN=1)")
    p_dev.add_argument("--log-format", choices=["text", "json"], default=os.environ.get("TAHSIL_LOG_FORMAT", "text"),
                       help="one line per request and per worker invocation: text, or JSON objects "
                            "(default: $TAHSIL_LOG_FORMAT or text)")
    p_merchants = sub.add_parser("merchants", help="manage merchants")
    merchants_sub = p_merchants.add_subparsers(dest="action", required=True)
    p_create = merchants_sub.add_parser("create", help="create a merchant and its first test and live keys")
    p_create.add_argument("--name", required=True)
    p_create.add_argument("--api-version", help="pin the account to this API version (default: the latest; "
                                                "2025-12-01.tigris answers seed 002's string errors)")
    where = p_create.add_mutually_exclusive_group()
    where.add_argument("--local", action="store_true", help="the running local gateway (default)")
    where.add_argument("--stack", help="a deployed CloudFormation stack name")
    p_create.add_argument("--region")
    p_limits = merchants_sub.add_parser("limits", help="override a merchant's rate limits (the template's are the default)")
    p_limits.add_argument("merchant_id")
    p_limits.add_argument("--set", action="append", required=True, metavar="CLASS.WINDOW=N",
                          help="e.g. payments.per_second=40, payments.per_hour=20000, queries.per_second=200")
    where = p_limits.add_mutually_exclusive_group()
    where.add_argument("--local", action="store_true", help="the running local gateway (default)")
    where.add_argument("--stack", help="a deployed CloudFormation stack name")
    p_limits.add_argument("--region")
    p_conn = merchants_sub.add_parser("connector", help="set a merchant's live payment processor (operators)")
    p_conn.add_argument("merchant_id")
    p_conn.add_argument("connector", choices=["adyen", "none"], help="none: remove it (live payments are refused again)")
    p_conn.add_argument("--merchant-account", help="the Adyen merchant account code")
    p_conn.add_argument("--api-key-env", metavar="VAR", help="environment variable holding the Adyen API key")
    p_conn.add_argument("--hmac-key-env", metavar="VAR", help="environment variable holding the notification HMAC key (hex)")
    p_conn.add_argument("--environment", choices=["test", "live"], default="live", help="Adyen's platform (default live)")
    p_conn.add_argument("--live-url-prefix", help="[random]-[company name] from the Customer Area (live platform)")
    p_conn.add_argument("--base-url", help="a local fake Adyen: http://127.0.0.1:<port> (scripts/fake_adyen.py)")
    p_conn.add_argument("--operator", help="who sets it (default: $TAHSIL_OPERATOR or the login name)")
    where = p_conn.add_mutually_exclusive_group()
    where.add_argument("--local", action="store_true", help="the running local gateway (default)")
    where.add_argument("--stack", help="a deployed CloudFormation stack name")
    p_conn.add_argument("--region")
    p_verify = merchants_sub.add_parser("verify-payout", help="mark the payout destination verified (operators, after "
                                                               "checking ownership out of band)")
    p_verify.add_argument("merchant_id")
    p_verify.add_argument("--reason", required=True, help="how ownership was checked (bank letter, statement...)")
    p_verify.add_argument("--payout-id", help="the po_... you checked (refused if the destination changed since)")
    p_verify.add_argument("--operator", help="who verifies (default: $TAHSIL_OPERATOR or the login name)")
    where = p_verify.add_mutually_exclusive_group()
    where.add_argument("--local", action="store_true", help="the running local gateway (default)")
    where.add_argument("--stack", help="a deployed CloudFormation stack name")
    p_verify.add_argument("--region")
    p_audit = merchants_sub.add_parser("audit", help="a merchant's audit trail (payout changes), newest first")
    p_audit.add_argument("merchant_id")
    p_audit.add_argument("--limit", type=int, default=100)
    where = p_audit.add_mutually_exclusive_group()
    where.add_argument("--local", action="store_true", help="the running local gateway (default)")
    where.add_argument("--stack", help="a deployed CloudFormation stack name")
    p_audit.add_argument("--region")
    p_golive = sub.add_parser("go-live", help="approve or reject a merchant's go-live review (operators)")
    p_golive.add_argument("decision", choices=["approve", "reject"])
    p_golive.add_argument("merchant_id")
    p_golive.add_argument("--reason", help="why (required to reject, and to --force an approval)")
    p_golive.add_argument("--force", action="store_true", help="approve although checklist items fail")
    p_golive.add_argument("--operator", help="who decides (default: $TAHSIL_OPERATOR or the login name)")
    where = p_golive.add_mutually_exclusive_group()
    where.add_argument("--local", action="store_true", help="the running local gateway (default)")
    where.add_argument("--stack", help="a deployed CloudFormation stack name")
    p_golive.add_argument("--region")
    p_users = sub.add_parser("users", help="dashboard users (Cognito)")
    users_sub = p_users.add_subparsers(dest="action", required=True)
    p_user = users_sub.add_parser("create", help="create a dashboard user for a merchant (temporary password)")
    p_user.add_argument("--merchant-id", required=True)
    p_user.add_argument("--email", required=True)
    p_user.add_argument("--role", choices=["owner", "developer", "viewer"], default="owner",
                        help="owner: everything; developer: all but account and payout changes, and no live powers; "
                             "viewer: read only (default: owner)")
    where = p_user.add_mutually_exclusive_group()
    where.add_argument("--local", action="store_true", help="the running local gateway (default)")
    where.add_argument("--stack", help="a deployed CloudFormation stack name")
    p_user.add_argument("--region")
    p_role = users_sub.add_parser("set-role", help="change a dashboard user's role (operators); their sessions end")
    p_role.add_argument("--email", required=True)
    p_role.add_argument("--role", required=True, choices=["owner", "developer", "viewer"])
    p_role.add_argument("--merchant-id", help="refuse unless the user belongs to this merchant")
    where = p_role.add_mutually_exclusive_group()
    where.add_argument("--local", action="store_true", help="the running local gateway (default)")
    where.add_argument("--stack", help="a deployed CloudFormation stack name")
    p_role.add_argument("--region")
    p_ops = sub.add_parser("ops", help="operations (docs/operations.md)")
    ops_sub = p_ops.add_subparsers(dest="action", required=True)
    p_redrive = ops_sub.add_parser("redrive", help="replay dead-letter and stream-failure queues, safely and idempotently")
    p_redrive.add_argument("--queue", action="append", metavar="LOGICAL_ID",
                           help="a failure queue of template.yaml, e.g. WebhookDeliveryDLQ (default: all of them)")
    p_redrive.add_argument("--limit", type=int, help="at most this many messages per queue")
    where = p_redrive.add_mutually_exclusive_group()
    where.add_argument("--local", action="store_true", help="the running local gateway (default)")
    where.add_argument("--stack", help="a deployed CloudFormation stack name")
    p_redrive.add_argument("--region")
    p_listen = sub.add_parser("listen", help="receive, verify and print the local gateway's webhooks")
    p_listen.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    p_listen.add_argument("--events", default="*", help="comma-separated event types (default: all)")
    p_listen.add_argument("--forward-to", help="also POST each verified event to this URL")
    p_env = sub.add_parser("env", help='the running local gateway as shell exports: eval "$(.venv/bin/tahsil env)"')
    p_env.add_argument("--port", type=int, help="the gateway on this port (default: TAHSIL_PORT, else the only one running)")
    p_openapi = sub.add_parser("openapi", help="write or check docs/openapi.json")
    p_openapi.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "dev":
        from tahsil_local import accesslog

        accesslog.configure(args.log_format)
        code = dev(args.port, verbose=args.verbose, fake_adyen=args.fake_adyen)
        # Step Functions executions (expiry timers wait for days) live in moto's threads; the
        # state they guard is in memory and gone anyway, so leave now rather than wait for them.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if args.command == "merchants":
        if args.action == "connector":
            return merchant_connector(args)
        if args.action == "verify-payout":
            return verify_payout(args)
        if args.action == "audit":
            return audit(args)
        return merchant_limits(args) if args.action == "limits" else create_merchant(args)
    if args.command == "listen":
        return listen(args)
    if args.command == "env":
        return env(args)
    if args.command == "go-live":
        return go_live(args)
    if args.command == "users":
        return set_role(args) if args.action == "set-role" else create_user(args)
    if args.command == "ops":
        return redrive(args)
    return openapi(args)


if __name__ == "__main__":
    sys.exit(main())
