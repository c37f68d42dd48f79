"""A fake Adyen (dev tooling in the local runtime, never in the Lambda layer): the Checkout API's /payments and modifications, and signed notifications.

Built from Adyen's published Checkout API description (v71: POST /payments, POST /payments/{pspReference}/
captures|cancels|refunds, the Idempotency-Key header, X-API-Key authentication, 422 validation errors) and its
standard notification format (notificationItems[].NotificationRequestItem, HMAC-SHA256 over
pspReference:originalReference:merchantAccountCode:merchantReference:value:currency:eventCode:success with
the hex key, base64, in additionalData.hmacSignature).

Issuer behaviour: ``holderName`` set to a refusal reason ("Not enough balance", "CVC Declined", ...) refuses
with it; anything else is authorised. Faults: ``fault(operation) -> None | "hang_before" | "hang_after" |
"500_before" | "500_after"`` decides per request (hang: answer after ``hang_seconds``, longer than the
client waits; before/after: whether the operation happened). The ledger records what really happened.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REFUSALS = {  # refusalReason -> refusalReasonCode (Adyen's published list)
    "Refused": "2", "Acquirer Error": "4", "Blocked Card": "5", "Expired Card": "6", "Issuer Unavailable": "9",
    "Not enough balance": "12", "Acquirer Fraud": "14", "FRAUD": "20", "CVC Declined": "24",
    "Declined Non Generic": "27", "Issuer Suspected Fraud": "31",
}


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


class FakeAdyen:
    def __init__(self, *, api_key: str, hmac_key: str, merchant_account: str, hang_seconds: float = 0.6,
                 fault: Callable[[str], str | None] | None = None, seed: int = 7) -> None:
        self.api_key, self.hmac_key, self.merchant_account = api_key, hmac_key, merchant_account
        self.hang_seconds = hang_seconds
        self.fault = fault or (lambda op: None)
        self.lock = threading.Lock()
        self.payments: dict[str, Ledger] = {}
        self.replies: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self.notifications: list[dict[str, Any]] = []
        self.requests = 0
        self._rand = random.Random(seed)
        self._server: ThreadingHTTPServer | None = None
        self._pusher: threading.Thread | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------ server

    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, body = fake.handle(self.path, self.headers, raw)
                if status < 0:
                    return  # the connection is dropped without an answer
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    if body.get("pspReference"):
                        self.send_header("pspReference", body["pspReference"])
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-adyen", daemon=True).start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # ------------------------------------------------------------ API

    def _psp(self) -> str:
        return "".join(self._rand.choice("0123456789") for _ in range(16))

    def handle(self, path: str, headers: Any, raw: bytes) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests += 1
        if headers.get("X-API-Key") != self.api_key:
            return 401, {"status": 401, "errorCode": "000", "message": "HTTP Status Response - Unauthorized",
                         "errorType": "security"}
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return 400, {"status": 400, "errorCode": "702", "message": "Structure could not be parsed", "errorType": "validation"}
        parts = path.strip("/").split("/")
        if len(parts) == 2 and parts[1] == "payments":
            op = "payments"
        elif len(parts) == 4 and parts[1] == "payments" and parts[3] in ("captures", "cancels", "refunds"):
            op = parts[3]
        else:
            return 404, {"status": 404, "errorCode": "000", "message": "not found", "errorType": "validation"}
        fault = self.fault(op)
        if fault in ("hang_before", "500_before"):
            if fault == "hang_before":
                time.sleep(self.hang_seconds)
            return 500, {"status": 500, "errorCode": "905", "message": "Payment details are not supported",
                         "errorType": "internal"}
        key = headers.get("Idempotency-Key") or ""
        with self.lock:
            if key and (self.api_key, key) in self.replies:
                status, reply = self.replies[(self.api_key, key)]  # Adyen: same key -> the first answer
            else:
                status, reply = self._operate(op, parts, body)
                if key and status < 500:
                    self.replies[(self.api_key, key)] = (status, reply)
        if fault == "hang_after":
            time.sleep(self.hang_seconds)
        if fault == "500_after":
            return 500, {"status": 500, "errorCode": "000", "message": "internal error", "errorType": "internal"}
        return status, reply

    def _invalid(self, message: str, code: str = "167") -> tuple[int, dict[str, Any]]:
        return 422, {"status": 422, "errorCode": code, "message": message, "errorType": "validation"}

    def _operate(self, op: str, parts: list[str], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body.get("merchantAccount") != self.merchant_account:
            return 403, {"status": 403, "errorCode": "901", "message": "Invalid Merchant Account", "errorType": "security"}
        reference = body.get("reference")
        if not isinstance(reference, str) or not reference:
            return self._invalid("Required field 'reference' is not provided.", "130")
        amount = body.get("amount") or {}
        if op == "payments":
            method = body.get("paymentMethod") or {}
            if method.get("type") != "scheme" or not str(method.get("number", "")).isdigit():
                return self._invalid("Invalid card number", "101")
            holder = str(method.get("holderName") or "")
            reason = next((r for r in REFUSALS if r.lower() == holder.lower()), None)
            psp = self._psp()
            answer: dict[str, Any] = {"pspReference": psp, "merchantReference": reference, "amount": amount}
            if reason:
                answer |= {"resultCode": "Refused", "refusalReason": reason, "refusalReasonCode": REFUSALS[reason]}
            else:
                answer |= {"resultCode": "Authorised", "additionalData": {"authCode": str(int(psp[-6:]) % 999999 + 1).zfill(6)}}
            ledger = Ledger(reference, int(amount["value"]), amount["currency"], authorised=not reason)
            ledger.operations.append(("authorise", reference, int(amount["value"])))
            if not reason and body.get("captureDelayHours") == 0:
                ledger.captured = ledger.amount
                ledger.operations.append(("capture", reference, ledger.amount))
            self.payments[psp] = ledger
            self._notify("AUTHORISATION", psp, None, reference, ledger.amount, ledger.currency, not reason, reason,
                         answer.get("additionalData"))
            return 200, answer
        psp = parts[2]
        ledger = self.payments.get(psp)
        if ledger is None or not ledger.authorised:
            return self._invalid("Original pspReference required for this operation")
        value = int(amount.get("value", 0)) if op != "cancels" else ledger.amount
        mod_psp = self._psp()
        reply = {"merchantAccount": self.merchant_account, "paymentPspReference": psp, "pspReference": mod_psp,
                 "reference": reference, "status": "received"}
        if op != "cancels":
            reply["amount"] = amount
        if op == "captures":
            ok = not ledger.cancelled and ledger.captured == 0 and value <= ledger.amount
            if ok:
                ledger.captured = value
                ledger.operations.append(("capture", reference, value))
            self._notify("CAPTURE", mod_psp, psp, reference, value, ledger.currency, ok, None if ok else "Insufficient balance")
        elif op == "cancels":
            ok = ledger.captured == 0 and not ledger.cancelled
            if ok:
                ledger.cancelled = True
                ledger.operations.append(("cancel", reference, ledger.amount))
            self._notify("CANCELLATION", mod_psp, psp, reference, ledger.amount, ledger.currency, ok,
                         None if ok else "Already captured")
        else:
            ok = value <= ledger.captured - ledger.refunded
            if ok:
                ledger.refunded += value
                ledger.operations.append(("refund", reference, value))
            self._notify("REFUND", mod_psp, psp, reference, value, ledger.currency, ok, None if ok else "Insufficient balance")
        return 201, reply

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
            "amount": {"value": value, "currency": currency}, "eventCode": event, "eventDate": "2026-12-01T10:00:00+01:00",
            "merchantAccountCode": self.merchant_account, "merchantReference": reference, "pspReference": psp,
            "reason": reason or "", "success": "true" if success else "false",
        }
        if original:
            item["originalReference"] = original
        item["additionalData"] = {**(extra or {}), "hmacSignature": self.sign(item)}
        self.notifications.append(item)

    def take_notifications(self) -> list[dict[str, Any]]:
        with self.lock:
            out, self.notifications = self.notifications, []
        return out

    @staticmethod
    def envelope(items: list[dict[str, Any]], live: bool = False) -> str:
        return json.dumps({"live": "true" if live else "false",
                           "notificationItems": [{"NotificationRequestItem": i} for i in items]})

    def push_to(self, url: str, every: float = 1.0) -> None:
        """Deliver notifications to ``url`` in the background (the local switch), one item per request, retried."""

        def run() -> None:
            backlog: list[dict[str, Any]] = []
            while not self._stop.wait(every):
                backlog += self.take_notifications()
                kept = []
                for item in backlog:
                    request = urllib.request.Request(url, data=self.envelope([item]).encode(), method="POST",
                                                     headers={"Content-Type": "application/json"})
                    try:
                        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback only
                            if answer.read().strip() != b"[accepted]":
                                kept.append(item)
                    except OSError:
                        kept.append(item)
                backlog = kept

        self._pusher = threading.Thread(target=run, name="fake-adyen-notifications", daemon=True)
        self._pusher.start()
