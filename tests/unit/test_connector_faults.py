"""300 live payments through the Adyen connector while the network, Adyen and Tahsil's own functions fail.

Faults (seeded, so a failure replays): 10% of calls to Adyen hang past the client's timeout (half of
them after Adyen acted), 5% answer 500 (half after acting), 5% of commits crash after the processor
answered and before Tahsil wrote the outcome; notifications arrive shuffled, in batches, a quarter of
them twice. The merchant retries a 202 or 500 with the same Idempotency-Key up to three times, then
leaves it to the recovery worker. The merchant's calls go straight to the domain
(``tahsil.payments.lifecycle`` and ``modifications``) with their Idempotency-Key in the request context, to keep the run
short; tests/unit/test_connectors.py covers the same paths through the HTTP handlers.

Then, for every operation Adyen performed: exactly one Tahsil payment or transaction in the right final
state; no payment authorized at Adyen twice; every event exactly once; captured - refunded per merchant
equal to Adyen's.
"""

from __future__ import annotations

import collections
import os
import random
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest

from tahsil_local.fake_adyen import FakeAdyen
from tests.support.connectors import LIVE_CARD, all_items, connect, notify, run_recovery

PAYMENTS = int(os.environ.get("TAHSIL_FAULT_PAYMENTS", "300"))
RETRIES = 3


@dataclass
class Reply:
    status: int
    data: Any = None


def _domain(call: Any) -> Reply:
    """What the HTTP layer would answer: 200, 202 (processing), 4xx (TahsilError) or 500 (a crash)."""
    from tahsil.kernel.errors import PaymentProcessing, TahsilError

    try:
        return Reply(200, call())
    except PaymentProcessing as pending:
        return Reply(202, pending.data)
    except TahsilError as exc:
        return Reply(exc.http_status, exc.body())
    except RuntimeError:
        return Reply(500)


class Faults:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.on = True
        self.seen: collections.Counter[str] = collections.Counter()

    def __call__(self, op: str) -> str | None:
        with self.lock:
            if not self.on:
                return None
            r = self.rng.random()
            fault = None
            if r < 0.10:
                fault = "hang_before" if self.rng.random() < 0.5 else "hang_after"
            elif r < 0.15:
                fault = "500_before" if self.rng.random() < 0.5 else "500_after"
            self.seen[fault or "ok"] += 1
            return fault

    def crash(self, stage: str, reference: str) -> None:
        with self.lock:
            hit = self.on and self.rng.random() < 0.05
            if hit:
                self.seen["crash"] += 1
        if hit:
            raise RuntimeError(f"simulated crash before commit ({stage} {reference})")


def _retrying(call: Any) -> Reply:
    answer = _domain(call)
    for _ in range(RETRIES):
        if answer.status not in (202, 500):
            break
        answer = _domain(call)
    return answer


def _deliver(merchant_id: str, fake: FakeAdyen, rng: random.Random) -> None:
    items = fake.take_notifications()
    items += [i for i in items if rng.random() < 0.25]  # duplicates
    rng.shuffle(items)  # out of order
    while items:
        batch, items = items[:8], items[8:]
        assert notify(merchant_id, FakeAdyen.envelope(batch)) == (200, "[accepted]")


def test_300_payments_under_faults_keep_tahsil_and_adyen_in_agreement(
        merchant: dict[str, Any], fake_adyen: FakeAdyen, monkeypatch: pytest.MonkeyPatch) -> None:
    from tahsil.kernel.events import RequestContext
    from tahsil.kernel.principal import ALL_SCOPES, Principal
    from tahsil.payments import lifecycle, modifications
    from tahsil.payments.models import CaptureRequest, PaymentCreate, RefundRequest, VoidRequest

    mid = merchant["merchant_id"]
    who = Principal(merchant_id=mid, mode="live", key_id="key_faults", key_type="secret", scopes=ALL_SCOPES,
                    live_enabled=True)

    def ctx(key: str) -> RequestContext:
        return RequestContext(request_id=f"req-{key}", idempotency_key=key)

    # moto copies whole tables for each TransactWriteItems; the local runtime's fix copies what it touches.
    from tahsil_local import moto_fixes

    moto_fixes.install()
    connect(mid, fake_adyen)
    started = time.monotonic()
    faults = Faults(1401)
    fake_adyen.fault = faults
    monkeypatch.setattr(lifecycle, "checkpoint", faults.crash)
    rng = random.Random(14)
    known: dict[str, str] = {}  # payment id -> what the merchant planned

    for n in range(PAYMENTS):
        sale = rng.random() < 0.25
        amount = rng.randrange(500, 20_000)
        # Fresh cards (velocity never declines) that are not seed test cards.
        card = {"number": f"4111{n:011d}"}
        card["number"] += str(_luhn_digit(card["number"]))
        req = PaymentCreate.model_validate({"amount": amount, "currency": "EUR", "card": {**LIVE_CARD, **card}})
        answer = _retrying(lambda: lifecycle.create(who, req, capture=sale, ctx=ctx(f"pay-{n}")))  # noqa: B023
        assert answer.status in (200, 202, 500), answer
        if answer.status != 200:
            continue  # the merchant gives up; the recovery worker finishes it
        payment = answer.data
        known[payment["id"]] = "sale" if sale else "auth"
        plan = rng.random()
        if payment["status"] == "authorized":
            if plan < 0.6:
                part = amount if rng.random() < 0.5 else rng.randrange(1, amount)
                _retrying(lambda: modifications.capture(who, payment["id"], CaptureRequest(amount=part), ctx(f"cap-{n}")))  # noqa: B023
            elif plan < 0.85:
                _retrying(lambda: modifications.void(who, payment["id"], VoidRequest(reason="cancelled"),  # noqa: B023
                                                  ctx(f"void-{n}")))  # noqa: B023
        elif payment["status"] == "captured" and plan < 0.6:
            for k in range(rng.randrange(1, 3)):
                part = rng.randrange(1, max(2, amount // 3))
                answer = _retrying(lambda: modifications.refund(who, payment["id"],  # noqa: B023
                                                             RefundRequest(amount=part, reason="returned"),  # noqa: B023
                                                             ctx(f"ref-{n}-{k}")))  # noqa: B023
                if answer.status == 409:
                    break  # the previous refund is still waiting for its notification
        if n % 25 == 24:
            _deliver(mid, fake_adyen, rng)
            run_recovery(rounds=1)
            print(f"faults: {n + 1} payments, {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)

    # Faults stop (Adyen and Tahsil recover); what was left in flight must settle.
    faults.on = False
    for _ in range(6):
        run_recovery(rounds=3)
        _deliver(mid, fake_adyen, rng)
    assert sum(v for k, v in faults.seen.items() if k != "ok") >= PAYMENTS // 10, faults.seen

    items = all_items()
    pays = {i["id"]: i for i in items if i["pk"].startswith("PAY#")}
    txns = {i["id"]: i for i in items if i["pk"].startswith("TXN#")}
    events = [i for i in items if i["pk"].startswith("EVTS#")]

    # Nothing is left between phases.
    assert not [p for p in pays.values() if p["status"] in ("processing", "capture_pending", "void_pending", "refund_pending")]
    assert not [t for t in txns.values() if t["status"] == "pending"]

    # No double charge: Adyen saw each Tahsil payment once (its reference is the payment id).
    references = [ledger.reference for ledger in fake_adyen.payments.values()]
    assert len(references) == len(set(references))
    by_reference = {ledger.reference: ledger for ledger in fake_adyen.payments.values()}

    # Every Adyen operation maps to exactly one Tahsil object in the right final state.
    for ledger in fake_adyen.payments.values():
        payment = pays[ledger.reference]
        if not ledger.authorised:
            assert payment["status"] == "failed"
            continue
        assert payment["captured_amount"] == ledger.captured, payment["id"]
        assert payment["refunded_amount"] == ledger.refunded, payment["id"]
        if ledger.cancelled:
            assert payment["status"] == "voided"
        for kind, reference, value in ledger.operations:
            if kind == "authorise":
                assert reference == payment["id"]
            elif reference.startswith("txn_"):
                txn = txns[reference]
                assert txn["payment_id"] == payment["id"] and txn["amount"] == value
                assert txn["status"] == {"capture": "captured", "refund": "refunded", "cancel": "voided"}[kind]
    # ... and every Tahsil object sent to Adyen is one of them.
    for payment in pays.values():
        if payment.get("processor_reference"):
            assert by_reference[payment["id"]].authorised == (payment["status"] != "failed")
    settled = collections.Counter((t["payment_id"], t["type"]) for t in txns.values()
                                  if t["status"] in ("captured", "refunded", "voided") and t["type"] in ("capture", "refund", "void"))
    processor_ops = collections.Counter((ledger.reference, {"capture": "capture", "refund": "refund", "cancel": "void"}[k])
                                        for ledger in fake_adyen.payments.values() for k, ref, _ in ledger.operations
                                        if ref.startswith("txn_"))
    assert settled == processor_ops

    # Every event exactly once: one per settled change, sequences unique per payment.
    per_payment: dict[str, list[str]] = collections.defaultdict(list)
    sequences: dict[str, list[int]] = collections.defaultdict(list)
    for event in events:
        per_payment[event["object_id"]].append(event["type"])
        sequences[event["object_id"]].append(event["sequence"])
    for pid, seqs in sequences.items():
        assert len(seqs) == len(set(seqs)), pid
    for payment in pays.values():
        got = collections.Counter(per_payment[payment["id"]])
        ledger = by_reference.get(payment["id"])
        expected: collections.Counter[str] = collections.Counter()
        if ledger is None or not ledger.authorised:
            expected["payment.failed"] = 1
        else:
            sale = not any(ref.startswith("txn_") and k == "capture" for k, ref, _ in ledger.operations) and ledger.captured
            expected["payment.captured" if sale else "payment.authorized"] = 1
            for k, ref, _ in ledger.operations:
                if ref.startswith("txn_"):
                    expected[{"capture": "payment.captured", "refund": "payment.refunded", "cancel": "payment.voided"}[k]] += 1
        assert got == expected, (payment["id"], got, expected)

    # Per merchant, Tahsil's captured - refunded equals Adyen's.
    tahsil_net = sum(p["captured_amount"] - p["refunded_amount"] for p in pays.values())
    adyen_net = sum(ledger.captured - ledger.refunded for ledger in fake_adyen.payments.values())
    assert tahsil_net == adyen_net
    assert len(pays) == PAYMENTS  # every payment was written once, whatever the merchant saw


def _luhn_digit(partial: str) -> int:
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10
