"""A fake Adyen (dev tooling in the local runtime, never in the Lambda layer): the Checkout API and signed notifications.

One implementation for the tests (``from tahsil_local.fake_adyen import FakeAdyen``), ``tahsil dev --fake-adyen``
(``make run-live``) and ``scripts/fake_adyen.py``. Built from Adyen's published descriptions (facts, no code):

- Checkout API v71: ``POST /payments``; ``POST /payments/{pspReference}/captures|cancels|refunds|reversals``;
  ``X-API-Key`` authentication; 401/403/422 error bodies ``{status, errorCode, message, errorType}``.
- API idempotency (docs.adyen.com, "API idempotency"): a POST with an ``Idempotency-Key`` header is processed
  once; the same key again gets the first response. While the first request is still being processed, the
  same key answers HTTP 422 with ``errorCode`` "704" ("request already processed or in progress"). Keys are
  scoped to the API credential (another credential's same key is another request).
  A key reused with a *different* request also answers 422 "704": Adyen documents one idempotency error
  code, and its text ("already processed") covers a key that was processed for another request; a client
  must treat it like the in-flight case (the first request's outcome is unknown to it), never as a refusal.
  Which fields must match: the method's path and the JSON body, except ``paymentMethod.cvc`` -- a store that
  keeps keys for days may not keep card security codes (PCI DSS) to compare them. ``compare_cvc=True``
  makes the comparison strict.
- Modifications are acknowledged (``status: received``) and settled later by a notification: CAPTURE,
  CANCELLATION, REFUND, CANCEL_OR_REFUND (reversals); CAPTURE_FAILED / REFUND_FAILED when refused.
- Standard notifications: ``{"live", "notificationItems": [{"NotificationRequestItem": {...}}]}``, each item
  HMAC-SHA256 signed over pspReference:originalReference:merchantAccountCode:merchantReference:value:currency:
  eventCode:success with the hex key, base64, in ``additionalData.hmacSignature``; delivered at least once and
  retried until the receiver answers ``[accepted]``.

Issuer: ``holderName`` set to a refusal reason ("Not enough balance", "CVC Declined", ...) refuses with it;
anything else is authorised.

Faults, per request: ``fault(operation) -> None | <fault>`` (a callback the tests set), or scripted with
``inject(fault, op=..., times=...)``, which wins while it lasts. Operations: "payments", "captures", "cancels",
"refunds", "reversals". Faults (``FAULTS``):

- "hang_before" / "hang_after": answer 500 / the real answer after ``hang_seconds`` (longer than the client
  waits); before: nothing happened, after: the operation happened. The key is not held while hanging.
- "hang_during": the operation takes ``hang_seconds``, holding its Idempotency-Key in flight (the same key
  meanwhile answers 422 "704"), then happens; the first client has given up by then.
- "500_before" / "500_after": HTTP 500; before: nothing happened, after: it happened (a replay gets the result).
- "drop_before" / "drop_after": the connection closes without an answer.
- "704": HTTP 422 "704" at once, nothing happens.
- "received" (payments): ``resultCode: Received``; the AUTHORISATION notification carries the outcome.
- "refuse" (modifications): acknowledged, then refused by notification (as ``refuse_modifications``).

Notification switches (``delay_notifications``, ``duplicate_notifications``, ``reorder_notifications``,
``drop_notifications``, ``refuse_modifications``) and the same over HTTP under ``/_fake`` (see ``control``).
Without a notification URL, notifications wait in ``notifications`` for ``take_notifications()`` (the unit
tests deliver them by hand); with one (``notify_url=`` or ``push_to(url)``) a background thread delivers them.
The ledger (``payments``) records what really happened.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import hmac
import json
import random
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_VERSION = "v71"
REFUSALS = {  # refusalReason -> refusalReasonCode (Adyen's published list)
    "Refused": "2", "Acquirer Error": "4", "Blocked Card": "5", "Expired Card": "6", "Issuer Unavailable": "9",
    "Not enough balance": "12", "Acquirer Fraud": "14", "FRAUD": "20", "CVC Declined": "24",
    "Declined Non Generic": "27", "Issuer Suspected Fraud": "31",
}
OPERATIONS = ("payments", "captures", "cancels", "refunds", "reversals")
MODIFICATIONS = OPERATIONS[1:]
FAULTS = frozenset({"hang_before", "hang_after", "hang_during", "500_before", "500_after", "drop_before",
                    "drop_after", "704", "received", "refuse"})
# How a refused modification is notified: "failed" (CAPTURE_FAILED / REFUND_FAILED; a cancel or reversal:
# CANCELLATION / CANCEL_OR_REFUND with success false), "unsuccessful" (CAPTURE / REFUND with success false),
# "after_success" (CAPTURE success true, then CAPTURE_FAILED: the money came back after all).
REFUSAL_STYLES = ("failed", "unsuccessful", "after_success")
EVENTS = {"captures": "CAPTURE", "cancels": "CANCELLATION", "refunds": "REFUND", "reversals": "CANCEL_OR_REFUND"}
FAILED_EVENTS = {"captures": "CAPTURE_FAILED", "refunds": "REFUND_FAILED"}
IDEMPOTENCY_ERROR = "704"
REFUSED_REASON = "Modification refused (fake Adyen refusal switch)"


@dataclass
class Ledger:
    """The processor's truth per payment pspReference."""

    reference: str
    amount: int
    currency: str
    authorised: bool
    captured: int = 0
    refunded: int = 0
    cancelled: bool = False
    operations: list[tuple[str, str, int]] = field(default_factory=list)  # (kind, merchant reference, amount)


@dataclass
class _Delivery:
    item: dict[str, Any]
    next_at: float
    first_at: float
    attempts: int = 0


@dataclass
class _Switch:
    value: float = 0.0
    events: frozenset[str] | None = None  # None: every event code

    def applies(self, event: str) -> bool:
        return self.value > 0 and (self.events is None or event in self.events)

    def view(self) -> dict[str, Any]:
        return {"value": self.value, "events": sorted(self.events) if self.events is not None else None}


def _events(events: Iterable[str] | None) -> frozenset[str] | None:
    return None if events is None else frozenset(str(e).upper() for e in events)


class FakeAdyen:
    def __init__(self, *, api_key: str, hmac_key: str, merchant_account: str, hang_seconds: float = 0.6,
                 fault: Callable[[str], str | None] | None = None, seed: int = 7, notify_url: str | None = None,
                 retry_delays: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0), give_up_after: float = 120.0,
                 compare_cvc: bool = False) -> None:
        self.api_key, self.hmac_key, self.merchant_account = api_key, hmac_key, merchant_account
        self.api_keys = {api_key}  # credentials this account accepts; idempotency keys are scoped to each
        self.hang_seconds = hang_seconds
        self.fault: Callable[[str], str | None] = fault or (lambda op: None)
        self.compare_cvc = compare_cvc
        self.lock = threading.RLock()
        self.payments: dict[str, Ledger] = {}
        self.replies: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}  # (credential, key) -> first answer
        self.fingerprints: dict[tuple[str, str], str] = {}  # (credential, key) -> what the first request was
        self.in_flight: set[tuple[str, str]] = set()
        self.requests = 0  # Checkout API requests (not /_fake control calls)
        self.replayed = 0  # answered from the idempotency store
        self.rejected_704 = 0  # 422 "704": in flight, reused for another request, or injected
        # Notifications: waiting to be taken or pushed; every one made; and what became of them when pushed.
        self.notifications: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.dropped: list[dict[str, Any]] = []
        self.delivered: list[dict[str, Any]] = []
        self.undelivered: list[dict[str, Any]] = []  # retried past give_up_after
        self.delivery_attempts = 0
        self.notify_url = notify_url
        self.retry_delays = retry_delays
        self.give_up_after = give_up_after
        self.live = False  # the notifications' "live" flag
        self._due: dict[int, float] = {}  # id(item) in notifications -> when it may be sent (monotonic)
        self._retrying: list[_Delivery] = []
        self._rand = random.Random(seed)  # pspReferences
        self._chaos = random.Random(seed + 1)  # notification switches
        self._scripted: list[list[Any]] = []  # [op, fault, times left or None]
        self.refusals: dict[str, str] = {}  # op -> refusal style
        self._delay, self._duplicate, self._drop = _Switch(), _Switch(), _Switch()
        self._reorder = 0.0
        self._server: ThreadingHTTPServer | None = None
        self._pusher: threading.Thread | None = None
        self._push_every = 0.2
        self._stop = threading.Event()

    # ------------------------------------------------------------ server

    def start(self) -> str:
        """Serve on 127.0.0.1, a free port; push notifications if a URL is set. Returns the base URL."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body = fake.handle(self.path, self.headers, raw, method=method)
                if status < 0:
                    self.close_connection = True
                    return  # the connection is dropped without an answer
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    if body.get("pspReference"):
                        self.send_header("pspReference", body["pspReference"])
                    if status == 422 and body.get("errorCode") == IDEMPOTENCY_ERROR or status >= 500:
                        self.send_header("transient-error", "true")  # Adyen marks errors worth retrying
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self._serve("POST")

            def do_GET(self) -> None:  # noqa: N802
                self._serve("GET")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-adyen", daemon=True).start()
        if self.notify_url:
            self.push_to(self.notify_url, every=self._push_every)
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def control_url(self) -> str:
        return f"{self.url}/_fake"

    def stop(self) -> None:
        self._stop.set()
        if self._pusher is not None and self._pusher is not threading.current_thread():
            self._pusher.join(timeout=10)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def add_api_key(self, api_key: str | None = None) -> str:
        """Another API credential for the same account (its idempotency keys are its own)."""
        key = api_key or "fake_" + secrets.token_urlsafe(16)
        self.api_keys.add(key)
        return key

    # ------------------------------------------------------------ switches (tests call these; /_fake maps onto them)

    def inject(self, fault: str, op: str = "*", times: int | None = 1) -> None:
        """The next ``times`` requests of ``op`` ("*": any; None: until ``reset``) get ``fault``, before ``fault()``."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(sorted(FAULTS))}")
        if op != "*" and op not in OPERATIONS:
            raise ValueError(f"unknown operation {op!r}; one of *, {', '.join(OPERATIONS)}")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None: until reset)")
        with self.lock:
            self._scripted.append([op, fault, times])

    def delay_notifications(self, seconds: float, events: Iterable[str] | None = None) -> None:
        """Hold new notifications (of ``events``, e.g. {"AUTHORISATION"} for late authorisations) ``seconds``."""
        with self.lock:
            self._delay = _Switch(max(0.0, float(seconds)), _events(events))

    def duplicate_notifications(self, probability: float = 1.0, events: Iterable[str] | None = None) -> None:
        """Send each new notification twice with this probability (Adyen delivers at least once)."""
        with self.lock:
            self._duplicate = _Switch(min(1.0, max(0.0, float(probability))), _events(events))

    def reorder_notifications(self, window: float = 1.0) -> None:
        """Shuffle: each new notification waits a random extra 0..``window`` s, and ``take_notifications`` shuffles
        what it returns (0: in order again)."""
        with self.lock:
            self._reorder = max(0.0, float(window))

    def drop_notifications(self, probability: float = 1.0, events: Iterable[str] | None = None) -> None:
        """Never send new notifications (of ``events``) with this probability; they are kept in ``dropped``."""
        with self.lock:
            self._drop = _Switch(min(1.0, max(0.0, float(probability))), _events(events))

    def refuse_modifications(self, *ops: str, how: str | None = "failed") -> None:
        """Acknowledge, then refuse by notification, the modifications ``ops`` (default all); ``how=None`` stops."""
        chosen = ops or MODIFICATIONS
        for op in chosen:
            if op not in MODIFICATIONS:
                raise ValueError(f"not a modification: {op!r}; one of {', '.join(MODIFICATIONS)}")
        if how is not None and how not in REFUSAL_STYLES:
            raise ValueError(f"unknown refusal style {how!r}; one of {', '.join(REFUSAL_STYLES)}")
        with self.lock:
            for op in chosen:
                if how is None:
                    self.refusals.pop(op, None)
                else:
                    self.refusals[op] = how

    def reset(self) -> None:
        """Every switch off, scripted faults forgotten; the ledger, keys and queued notifications stay."""
        with self.lock:
            self._scripted.clear()
            self.refusals.clear()
            self._delay, self._duplicate, self._drop = _Switch(), _Switch(), _Switch()
            self._reorder = 0.0

    def switches(self) -> dict[str, Any]:
        with self.lock:
            return {"faults": [{"op": op, "fault": f, "times": n} for op, f, n in self._scripted],
                    "refusals": dict(self.refusals),
                    "notifications": {"delay": self._delay.view(), "duplicate": self._duplicate.view(),
                                      "drop": self._drop.view(), "reorder": self._reorder}}

    def state(self) -> dict[str, Any]:
        """What ``GET /_fake`` answers: switches, counters, the ledger."""
        with self.lock:
            return {
                "merchant_account": self.merchant_account, "notify_url": self.notify_url, "switches": self.switches(),
                "requests": self.requests, "replayed": self.replayed, "rejected_704": self.rejected_704,
                "notifications": {"made": len(self.history), "waiting": len(self.notifications),
                                  "retrying": len(self._retrying), "delivered": len(self.delivered),
                                  "undelivered": len(self.undelivered), "dropped": len(self.dropped),
                                  "attempts": self.delivery_attempts},
                "payments": {psp: {"reference": lg.reference, "amount": lg.amount, "currency": lg.currency,
                                   "authorised": lg.authorised, "captured": lg.captured, "refunded": lg.refunded,
                                   "cancelled": lg.cancelled, "operations": [list(o) for o in lg.operations]}
                             for psp, lg in self.payments.items()},
            }

    def _fault_for(self, op: str) -> str | None:
        with self.lock:
            for entry in self._scripted:
                if entry[0] in ("*", op):
                    if entry[2] is not None:
                        entry[2] -= 1
                        if entry[2] <= 0:
                            self._scripted.remove(entry)
                    return str(entry[1])
        return self.fault(op)

    # ------------------------------------------------------------ HTTP control (/_fake, loopback only, no key)

    def control(self, method: str, path: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        """``GET /_fake``: state. ``POST /_fake/faults`` {fault, op="*", times=1}; ``POST /_fake/notifications``
        {delay, delay_events, duplicate, duplicate_events, reorder, drop, drop_events} (each optional);
        ``POST /_fake/refusals`` {ops=[...], how="failed"|"unsuccessful"|"after_success"|null};
        ``POST /_fake/reset``. Answers the state after the change, or 400 {"error"}."""
        route = path.split("?", 1)[0].rstrip("/")
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("a JSON object is expected")
            if method == "GET" and route == "/_fake":
                return 200, self.state()
            if method != "POST":
                return 405, {"error": f"{method} {route}: POST to change a switch, GET /_fake to read them"}
            if route == "/_fake/faults":
                self.inject(str(body["fault"]), str(body.get("op", "*")), body.get("times", 1))
            elif route == "/_fake/notifications":
                if "delay" in body:
                    self.delay_notifications(body["delay"], body.get("delay_events"))
                if "duplicate" in body:
                    self.duplicate_notifications(body["duplicate"], body.get("duplicate_events"))
                if "reorder" in body:
                    self.reorder_notifications(body["reorder"])
                if "drop" in body:
                    self.drop_notifications(body["drop"], body.get("drop_events"))
            elif route == "/_fake/refusals":
                self.refuse_modifications(*body.get("ops", ()), how=body.get("how", "failed"))
            elif route == "/_fake/reset":
                self.reset()
            else:
                return 404, {"error": f"no control endpoint {route}; see tahsil_local.fake_adyen.FakeAdyen.control"}
        except (ValueError, KeyError, TypeError) as exc:
            return 400, {"error": f"{type(exc).__name__}: {exc}"}
        return 200, self.state()

    # ------------------------------------------------------------ Checkout API

    def _psp(self) -> str:
        return "".join(self._rand.choice("0123456789") for _ in range(16))

    @staticmethod
    def _error(status: int, code: str, message: str, kind: str) -> tuple[int, dict[str, Any]]:
        return status, {"status": status, "errorCode": code, "message": message, "errorType": kind}

    def _704(self, why: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.rejected_704 += 1
        return self._error(422, IDEMPOTENCY_ERROR, f"Request already processed or in progress ({why})", "validation")

    def _fingerprint(self, path: str, body: dict[str, Any]) -> str:
        compared = copy.deepcopy(body)
        if not self.compare_cvc and isinstance(compared.get("paymentMethod"), dict):
            compared["paymentMethod"].pop("cvc", None)
        return hashlib.sha256(f"{path}\n{json.dumps(compared, sort_keys=True)}".encode()).hexdigest()

    def handle(self, path: str, headers: Any, raw: bytes, method: str = "POST") -> tuple[int, dict[str, Any]]:
        """One request: (HTTP status, JSON body); a negative status drops the connection without an answer."""
        if path.startswith("/_fake"):
            return self.control(method, path, raw)
        with self.lock:
            self.requests += 1
        credential = headers.get("X-API-Key")
        if credential not in self.api_keys:
            return self._error(401, "000", "HTTP Status Response - Unauthorized", "security")
        if method != "POST":
            return self._error(405, "000", "Method not allowed", "validation")
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            return self._error(400, "702", "Structure could not be parsed", "validation")
        parts = path.split("?", 1)[0].strip("/").split("/")
        if len(parts) == 2 and parts[1] == "payments":
            op = "payments"
        elif len(parts) == 4 and parts[1] == "payments" and parts[3] in MODIFICATIONS:
            op = parts[3]
        else:
            return self._error(404, "000", "not found", "validation")
        fault = self._fault_for(op)
        if fault == "704":
            return self._704("injected")
        if fault in ("hang_before", "500_before"):
            if fault == "hang_before":
                time.sleep(self.hang_seconds)
            return self._error(500, "905", "Payment details are not supported", "internal")
        if fault == "drop_before":
            return -1, {}
        key = headers.get("Idempotency-Key") or ""
        slot = (credential, key)
        fingerprint = self._fingerprint("/".join(parts[1:]), body)
        with self.lock:
            if key and slot in self.replies:
                if self.fingerprints.get(slot) != fingerprint:
                    return self._704("the key was used for a different request")
                self.replayed += 1
                status, reply = self.replies[slot]  # the first answer, nothing done again
                acting = False
            elif key and slot in self.in_flight:
                return self._704("the first request with this key is still being processed")
            else:
                acting = True
                if key:
                    self.in_flight.add(slot)
        if acting:
            try:
                if fault == "hang_during":
                    time.sleep(self.hang_seconds)
                with self.lock:
                    status, reply = self._operate(op, parts, body, fault)
                    if key and status < 500:
                        self.replies[slot], self.fingerprints[slot] = (status, reply), fingerprint
            finally:
                with self.lock:
                    self.in_flight.discard(slot)
        if fault == "hang_after":
            time.sleep(self.hang_seconds)
        if fault == "500_after":
            return self._error(500, "000", "internal error", "internal")
        if fault == "drop_after":
            return -1, {}
        return status, reply

    def _invalid(self, message: str, code: str = "167") -> tuple[int, dict[str, Any]]:
        return 422, {"status": 422, "errorCode": code, "message": message, "errorType": "validation"}

    def _operate(self, op: str, parts: list[str], body: dict[str, Any],
                 fault: str | None = None) -> tuple[int, dict[str, Any]]:
        if body.get("merchantAccount") != self.merchant_account:
            return 403, {"status": 403, "errorCode": "901", "message": "Invalid Merchant Account", "errorType": "security"}
        reference = body.get("reference")
        if not isinstance(reference, str) or not reference:
            return self._invalid("Required field 'reference' is not provided.", "130")
        amount = body.get("amount") or {}
        if op == "payments":
            return self._authorise(reference, amount, body, received=fault == "received")
        psp = parts[2]
        ledger = self.payments.get(psp)
        if ledger is None or not ledger.authorised:
            return self._invalid("Original pspReference required for this operation")
        if op in ("captures", "refunds") and (not isinstance(amount.get("value"), int) or amount.get("currency") != ledger.currency):
            return self._invalid("Invalid amount specified", "137")
        style = "failed" if fault == "refuse" else self.refusals.get(op)
        mod_psp = self._psp()
        reply = {"merchantAccount": self.merchant_account, "paymentPspReference": psp, "pspReference": mod_psp,
                 "reference": reference, "status": "received"}
        if op in ("captures", "refunds"):
            reply["amount"] = amount
        if op == "captures":
            self._capture(ledger, psp, mod_psp, reference, int(amount["value"]), style)
        elif op == "refunds":
            self._refund(ledger, psp, mod_psp, reference, int(amount["value"]), style)
        elif op == "cancels":
            ok = ledger.captured == 0 and not ledger.cancelled and not style
            if ok:
                ledger.cancelled = True
                ledger.operations.append(("cancel", reference, ledger.amount))
            self._notify("CANCELLATION", mod_psp, psp, reference, ledger.amount, ledger.currency, ok,
                         None if ok else (REFUSED_REASON if style else "Already captured"))
        else:  # reversals: cancel if nothing was captured, else refund what is left
            action = "cancel" if ledger.captured == 0 else "refund"
            value = ledger.amount if action == "cancel" else ledger.captured - ledger.refunded
            ok = not style and not ledger.cancelled and value > 0
            if ok and action == "cancel":
                ledger.cancelled = True
            elif ok:
                ledger.refunded += value
            if ok:
                ledger.operations.append((action, reference, value))
            self._notify("CANCEL_OR_REFUND", mod_psp, psp, reference, value, ledger.currency, ok,
                         None if ok else (REFUSED_REASON if style else "Nothing to reverse"),
                         {"modification.action": action})
        return 201, reply

    def _authorise(self, reference: str, amount: dict[str, Any], body: dict[str, Any],
                   received: bool) -> tuple[int, dict[str, Any]]:
        method = body.get("paymentMethod") or {}
        if method.get("type") != "scheme" or not str(method.get("number", "")).isdigit():
            return self._invalid("Invalid card number", "101")
        if not isinstance(amount.get("value"), int) or not isinstance(amount.get("currency"), str):
            return self._invalid("Invalid amount specified", "137")
        holder = str(method.get("holderName") or "")
        reason = next((r for r in REFUSALS if r.lower() == holder.lower()), None)
        psp = self._psp()
        answer: dict[str, Any] = {"pspReference": psp, "merchantReference": reference, "amount": amount}
        extra: dict[str, Any] | None = None
        if reason:
            answer |= {"resultCode": "Refused", "refusalReason": reason, "refusalReasonCode": REFUSALS[reason]}
        else:
            extra = {"authCode": str(int(psp[-6:]) % 999999 + 1).zfill(6)}
            answer |= {"resultCode": "Authorised", "additionalData": dict(extra)}
        if received:  # the outcome arrives by AUTHORISATION notification only
            answer = {"pspReference": psp, "merchantReference": reference, "amount": amount, "resultCode": "Received"}
        ledger = Ledger(reference, int(amount["value"]), amount["currency"], authorised=not reason)
        ledger.operations.append(("authorise", reference, int(amount["value"])))
        if not reason and body.get("captureDelayHours") == 0:
            ledger.captured = ledger.amount
            ledger.operations.append(("capture", reference, ledger.amount))
        self.payments[psp] = ledger
        self._notify("AUTHORISATION", psp, None, reference, ledger.amount, ledger.currency, not reason, reason, extra)
        return 200, answer

    def _capture(self, ledger: Ledger, psp: str, mod_psp: str, reference: str, value: int, style: str | None) -> None:
        ok = not ledger.cancelled and ledger.captured == 0 and 0 < value <= ledger.amount
        if not ok or style == "unsuccessful":
            self._notify("CAPTURE", mod_psp, psp, reference, value, ledger.currency, False,
                         REFUSED_REASON if ok else "Insufficient balance")
        elif style:  # refused: CAPTURE_FAILED (after a CAPTURE success, when asked); nothing stays captured
            if style == "after_success":
                self._notify("CAPTURE", mod_psp, psp, reference, value, ledger.currency, True, None)
            self._notify("CAPTURE_FAILED", mod_psp, psp, reference, value, ledger.currency, True, REFUSED_REASON)
        else:
            ledger.captured = value
            ledger.operations.append(("capture", reference, value))
            self._notify("CAPTURE", mod_psp, psp, reference, value, ledger.currency, True, None)

    def _refund(self, ledger: Ledger, psp: str, mod_psp: str, reference: str, value: int, style: str | None) -> None:
        ok = 0 < value <= ledger.captured - ledger.refunded
        if not ok or style == "unsuccessful":
            self._notify("REFUND", mod_psp, psp, reference, value, ledger.currency, False,
                         REFUSED_REASON if ok else "Insufficient balance")
        elif style:
            if style == "after_success":
                self._notify("REFUND", mod_psp, psp, reference, value, ledger.currency, True, None)
            self._notify("REFUND_FAILED", mod_psp, psp, reference, value, ledger.currency, True, REFUSED_REASON)
        else:
            ledger.refunded += value
            ledger.operations.append(("refund", reference, value))
            self._notify("REFUND", mod_psp, psp, reference, value, ledger.currency, True, None)

    # ------------------------------------------------------------ notifications

    def sign(self, item: dict[str, Any]) -> str:
        fields = [item.get("pspReference", ""), item.get("originalReference", ""), item.get("merchantAccountCode", ""),
                  item.get("merchantReference", ""), str(item["amount"]["value"]), item["amount"]["currency"],
                  item.get("eventCode", ""), item.get("success", "")]
        digest = hmac.new(bytes.fromhex(self.hmac_key), ":".join(fields).encode(), hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    def _notify(self, event: str, psp: str, original: str | None, reference: str, value: int, currency: str,
                success: bool, reason: str | None, extra: dict[str, Any] | None = None) -> None:
        item: dict[str, Any] = {
            "amount": {"value": value, "currency": currency}, "eventCode": event,
            "eventDate": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "merchantAccountCode": self.merchant_account, "merchantReference": reference, "pspReference": psp,
            "reason": reason or "", "success": "true" if success else "false",
        }
        if original:
            item["originalReference"] = original
        item["additionalData"] = {**(extra or {}), "hmacSignature": self.sign(item)}
        with self.lock:
            self.history.append(item)
            if self._drop.applies(event) and self._chaos.random() < self._drop.value:
                self.dropped.append(item)
                return
            copies = 2 if self._duplicate.applies(event) and self._chaos.random() < self._duplicate.value else 1
            now = time.monotonic()
            for n in range(copies):
                sent = item if n == 0 else copy.deepcopy(item)
                due = now + (self._delay.value if self._delay.applies(event) else 0.0)
                if self._reorder:
                    due += self._chaos.uniform(0, self._reorder)
                self.notifications.append(sent)
                self._due[id(sent)] = due

    def take_notifications(self) -> list[dict[str, Any]]:
        """The notifications due now (delayed ones stay), shuffled when reordering is on; the caller delivers them."""
        with self.lock:
            now = time.monotonic()
            due = [i for i in self.notifications if self._due.get(id(i), 0.0) <= now]
            self.notifications[:] = [i for i in self.notifications if self._due.get(id(i), 0.0) > now]
            for item in due:
                self._due.pop(id(item), None)
            if self._reorder:
                self._chaos.shuffle(due)
        return due

    @staticmethod
    def envelope(items: list[dict[str, Any]], live: bool = False) -> str:
        return json.dumps({"live": "true" if live else "false",
                           "notificationItems": [{"NotificationRequestItem": i} for i in items]})

    def push_to(self, url: str, every: float = 0.2) -> None:
        """Deliver notifications to ``url`` in the background, one item per POST, each retried (``retry_delays``,
        the last one repeated) until the receiver answers 2xx ``[accepted]``, for at most ``give_up_after`` s."""
        self.notify_url, self._push_every = url, every
        if self._pusher is not None:
            return
        self._pusher = threading.Thread(target=self._push_loop, name="fake-adyen-notifications", daemon=True)
        self._pusher.start()

    def _push_loop(self) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
        while not self._stop.wait(self._push_every):
            now = time.monotonic()
            for item in self.take_notifications():
                with self.lock:
                    self._retrying.append(_Delivery(item, now, now))
            with self.lock:
                ready = [d for d in self._retrying if d.next_at <= now]
            for delivery in ready:
                if self._stop.is_set():
                    return
                ok = self._post(opener, delivery.item)
                with self.lock:
                    delivery.attempts += 1
                    self.delivery_attempts += 1
                    now = time.monotonic()
                    if ok:
                        self._retrying.remove(delivery)
                        self.delivered.append(delivery.item)
                    elif now - delivery.first_at >= self.give_up_after:
                        self._retrying.remove(delivery)
                        self.undelivered.append(delivery.item)
                    else:
                        wait = self.retry_delays[min(delivery.attempts, len(self.retry_delays)) - 1]
                        delivery.next_at = now + wait

    def _post(self, opener: urllib.request.OpenerDirector, item: dict[str, Any]) -> bool:
        url = self.notify_url
        if not url:
            return False
        request = urllib.request.Request(url, data=self.envelope([item], self.live).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with opener.open(request, timeout=5) as answer:  # noqa: S310 - a configured loopback URL
                return 200 <= answer.status < 300 and b"[accepted]" in answer.read()
        except (OSError, urllib.error.URLError):
            return False

    def idle(self) -> bool:
        """Nothing waiting or being retried (dropped and given-up notifications do not count)."""
        with self.lock:
            return not self.notifications and not self._retrying

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait (bounded) until every pushed notification was accepted or given up; True if idle."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.idle():
                return True
            time.sleep(0.05)
        return self.idle()


def attach(merchant_id: str, notify_url: str, *, operator: str, merchant_account: str = "TahsilLocalECOM",
           **options: Any) -> FakeAdyen:
    """Start a fake Adyen with fresh credentials and make it ``merchant_id``'s live connector (the environment must
    point at the local gateway's AWS, as ``tahsil dev`` and ``scripts/fake_adyen.py`` do); notifications go to
    ``notify_url`` (the gateway's /connectors/adyen/<merchant>/notifications)."""
    from tahsil.connectors import settings

    api_key, hmac_key = "fake_" + secrets.token_urlsafe(24), secrets.token_hex(32).upper()
    fake = FakeAdyen(api_key=api_key, hmac_key=hmac_key, merchant_account=merchant_account, notify_url=notify_url,
                     **options)
    fake.start()
    try:
        settings.configure(merchant_id, mode="live", connector="adyen", operator=operator,
                           merchant_account=merchant_account, api_key=api_key, hmac_key=hmac_key, environment="test",
                           base_url=fake.url)
    except BaseException:
        fake.stop()
        raise
    return fake
