"""Go-live readiness (seed 000): the checklist, the score, reviews, and the operator's decision.

A new merchant's live keys can do everything except create payments (authorize, sale, payment
intents: ``tahsil.api.auth.LIVE_GATED_ROUTES``, 403 ``LIVE_MODE_NOT_ENABLED``) until an operator
approves a go-live review. The checklist, evaluated from the account's own records each time:

| item               | mode | passes when                                                                  | evidence     |
|--------------------|------|------------------------------------------------------------------------------|--------------|
| business_profile   | live | legal name, MCC, support email and phone are set                             | ``prf_...``  |
| api_keys           | live | an active live secret key has an IP allowlist (no /0 range) and cannot manage keys | ``key_...`` |
| webhook_delivery   | live | an enabled live endpoint answered 2xx to its two most recent attempts         | ``we_...``   |
| payout_destination | live | verified bank details whose holder is the legal name                         | ``po_...``   |
| test_payment       | test | a captured test payment whose ``payment.captured`` webhook was delivered (2xx) | ``pay_...``  |

``test_payment`` reads the test mode's delivery counters (``tahsil.store.counters``, scope
``DLV#<merchant>#test``: the latest delivered ``payment.captured``), then, if they hold none, the newest
test events and their delivery rows (bounded).

Score: the share of items that pass (each weighs the same). Blocking issues: the items that fail.

Reviews live on the merchant's partition of the CredentialsTable, ``MER#<id>`` /
``GOLIVE#<time>#<review id>``, with a snapshot of the readiness when requested. At most one is
pending: the request is one transaction with ``SET pending_review`` on the merchant item,
conditional on there being none. ``tahsil go-live approve|reject`` decides it: approval is one
transaction (the review, conditional on ``status = requested``; the merchant item's
``live_enabled``), then ``live_enabled`` is copied onto each of the merchant's key items, which
authentication reads anyway, so the gate costs no read on the payment path. A key created in
between reads the merchant item after its update, so it is enabled too (``tahsil.identity.keys``).
Approval re-evaluates the checklist and refuses while items fail, unless the operator forces it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from typing import Any

from tahsil.console.profile import merchant_item
from tahsil.kernel import clock
from tahsil.kernel.errors import Conflict, InvalidRequest, NotFound
from tahsil.kernel.ids import new_id
from tahsil.kernel.principal import Principal
from tahsil.store import counters, dal
from tahsil.webhooks import deliveries, events, outbox

NAMES = {
    "business_profile": "Business profile",
    "api_keys": "API keys",
    "webhook_delivery": "Webhook delivery",
    "payout_destination": "Payout destination",
    "test_payment": "Test payment",
}
MAX_ENDPOINTS = 10  # live endpoints looked at
MAX_DELIVERIES = 5  # newest deliveries per endpoint whose attempts are read
MAX_EVENT_ROWS = 500  # newest test events scanned for a delivered payment.captured
COUNTER_WINDOW = dt.timedelta(days=30)  # the delivery counters read for a delivered payment.captured


def _check(item: str, passed: bool, mode: str, evidence: str | None, detail: str) -> dict[str, Any]:
    return {"id": item, "name": NAMES[item], "status": "passed" if passed else "failed", "mode": mode,
            "evidence_id": evidence, "detail": detail}


def _business_profile(merchant: dict[str, Any]) -> dict[str, Any]:
    profile = merchant.get("profile") or {}
    labels = {"legal_name": "legal name", "mcc": "MCC", "support_email": "support email", "support_phone": "support phone"}
    missing = [label for name, label in labels.items() if not profile.get(name)]
    if missing:
        return _check("business_profile", False, "live", profile.get("profile_id"),
                      f"Add the business's {', '.join(missing)} (Account page, or PATCH /v1/account).")
    return _check("business_profile", True, "live", profile["profile_id"],
                  f"{profile['legal_name']}, MCC {profile['mcc']}; support {profile['support_email']}, "
                  f"{profile['support_phone']}.")


def admits_everyone(allowlist: list[str]) -> bool:
    """True when an entry has prefix length 0 (``0.0.0.0/0``, ``::/0``): it admits every address of its family."""
    for entry in allowlist:
        try:
            if ipaddress.ip_network(str(entry), strict=False).prefixlen == 0:
                return True
        except ValueError:
            continue
    return False


def _api_keys(merchant_id: str, now: dt.datetime) -> dict[str, Any]:
    keys = [k for k in dal.query_owner(dal.credentials_table(), f"MER#{merchant_id}", index="by_merchant",
                                       sk_from="KEY#", sk_to="KEY#~")
            if k["mode"] == "live" and k["type"] == "secret" and k["status"] == "active"
            and (k.get("expires_at") is None or int(k["expires_at"]) > now.timestamp())]
    bound = [k for k in keys if k.get("ip_allowlist") and not admits_everyone(k["ip_allowlist"])]
    good = [k for k in bound if "keys:write" not in (k.get("scopes") or [])]
    if good:
        key = good[0]
        return _check("api_keys", True, "live", key["key_id"],
                      f"Live key {key['prefix']}…{key['last4']} is active with {len(key.get('scopes') or [])} scopes "
                      f"and an IP allowlist ({', '.join(key['ip_allowlist'][:3])}).")
    if not keys:
        detail = "Create a live secret key for your server, with an IP allowlist and only the scopes it needs."
    elif bound:
        detail = "Your allowlisted live keys can also manage keys (keys:write); give your server a key without it."
    elif any(k.get("ip_allowlist") for k in keys):
        detail = ("Your live keys' IP allowlists admit the whole internet (a /0 range such as 0.0.0.0/0 or ::/0), "
                  "which is no allowlist: list your servers' addresses instead.")
    else:
        detail = "Bind a live secret key to your servers' addresses (IP allowlist), without the keys:write scope."
    return _check("api_keys", False, "live", None, detail)


def _ok(code: Any) -> bool:
    return isinstance(code, int) and 200 <= code < 300


def _webhook_delivery(merchant_id: str) -> dict[str, Any]:
    owner = f"{merchant_id}#live"
    live = [e for e in deliveries.endpoints(owner) if e["status"] == "enabled"][:MAX_ENDPOINTS]
    if not live:
        return _check("webhook_delivery", False, "live", None,
                      "Add a live webhook endpoint (https), then send it a test event twice.")
    best: tuple[str, str] | None = None
    for endpoint in live:
        tries: list[dict[str, Any]] = []
        rows = deliveries.delivery_rows(owner, endpoint["id"], limit=MAX_DELIVERIES, max_events=MAX_EVENT_ROWS)
        for age, row in enumerate(reversed(rows)):  # oldest delivery first
            tries += [{**t, "_age": age} for t in deliveries.attempts(row["event_id"], endpoint["id"])]
        # ``at`` has seconds precision: within one second, the newer delivery's attempts come last.
        tries.sort(key=lambda t: (t["at"] or "", t["_age"], t["round"] or 0, t["number"] or 0))
        last_two = tries[-2:]
        if len(last_two) == 2 and all(_ok(t["status_code"]) for t in last_two):
            return _check("webhook_delivery", True, "live", endpoint["id"],
                          f"{endpoint['url']} answered {last_two[0]['status_code']} and {last_two[1]['status_code']} "
                          f"on its last two attempts ({last_two[0]['event_id']}, {last_two[1]['event_id']}).")
        if tries and best is None:
            shown = ", ".join(str(t["status_code"] or t["error_class"]) for t in tries[-2:])
            best = (endpoint["id"], f"{endpoint['url']}: its last attempts got {shown}; it needs 2xx twice in a row.")
    if best:
        return _check("webhook_delivery", False, "live", best[0], best[1])
    return _check("webhook_delivery", False, "live", live[0]["id"],
                  f"{live[0]['url']} has no deliveries yet: send it a test event twice.")


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", name.casefold()).strip()


def _payout_destination(merchant: dict[str, Any]) -> dict[str, Any]:
    payout = merchant.get("payout_destination")
    legal = (merchant.get("profile") or {}).get("legal_name")
    if not payout:
        return _check("payout_destination", False, "live", None, "Add the bank account that receives payouts.")
    where = f"{payout['currency']} to {'IBAN' if payout['scheme'] == 'iban' else 'account'} …{payout['last4']}"
    if payout.get("bank_name"):
        where += f" at {payout['bank_name']}"
    if payout.get("status") != "verified":
        return _check("payout_destination", False, "live", payout["id"], f"Payout destination {where} is not verified.")
    if not legal or _normal(legal) != _normal(payout["account_holder_name"]):
        return _check("payout_destination", False, "live", payout["id"],
                      f"The account holder ({payout['account_holder_name']}) must be the business's legal name"
                      f"{f' ({legal})' if legal else ''}.")
    return _check("payout_destination", True, "live", payout["id"],
                  f"Payouts in {where} approved; the holder is the legal name.")


def _test_payment(merchant_id: str, now: dt.datetime) -> dict[str, Any]:
    """From the test mode's delivery counters first (``pc``: the latest payment.captured event delivered in a
    minute), newest minute first, at most five pages back within ``COUNTER_WINDOW``. Otherwise the newest test events are read (at most
    ``MAX_EVENT_ROWS``), with their delivery rows, to say what is missing (or to find an older delivery)."""
    item = counters.latest_with(dal.payments_table(), counters.delivery_scope(merchant_id, "test"), "pc",
                                now - COUNTER_WINDOW)
    if item is not None:
        last = item["pc"]
        return _check("test_payment", True, "test", last["object_id"],
                      f"Test payment {last['object_id']} was captured and its webhook {last['event_id']} was received.")
    captured: list[dict[str, Any]] = []
    for scanned, event in enumerate(outbox.owner_events(f"{merchant_id}#test"), start=1):
        if scanned > MAX_EVENT_ROWS:  # no filter expression: the bound is on rows read, not on rows that match
            break
        if event["type"] == "payment.captured":
            captured.append(event)
    rows = events.summaries_of(captured) if captured else {}
    for event in captured:
        if any(r["status"] == "delivered" for r in rows.get(event["id"], [])):
            return _check("test_payment", True, "test", event["object_id"],
                          f"Test payment {event['object_id']} was captured and its webhook {event['id']} was received.")
    if captured:
        seen = captured[0]["object_id"]
        return _check("test_payment", False, "test", seen,
                      f"Test payment {seen} was captured, but no endpoint has received its payment.captured "
                      "webhook yet.")
    return _check("test_payment", False, "test", None,
                  "Capture a test payment (hosted checkout or the API) with a test webhook endpoint receiving it.")


def evaluate(merchant: dict[str, Any]) -> dict[str, Any]:
    merchant_id = merchant["merchant_id"]
    now = clock.now()
    checks = [_business_profile(merchant), _api_keys(merchant_id, now), _webhook_delivery(merchant_id),
              _payout_destination(merchant), _test_payment(merchant_id, now)]
    passed = sum(1 for c in checks if c["status"] == "passed")
    blocking = [{"item": c["id"], "message": c["detail"]} for c in checks if c["status"] == "failed"]
    return {"score": round(100 * passed / len(checks)), "checks": checks, "blocking_issues": blocking,
            "readiness": "ready_for_approval" if not blocking else "not_ready", "evaluated_at": clock.iso(now)}


# ---------------------------------------------------------------- reviews


def review_view(item: dict[str, Any]) -> dict[str, Any]:
    return {k: item.get(k) for k in ("id", "status", "readiness", "score", "blocking_issues", "note", "requested_at",
                                     "requested_by", "decided_at", "decided_by", "reason")} | {"object": "go_live_review"}


def _reviews(merchant_id: str) -> list[dict[str, Any]]:
    rows = dal.query_partition(dal.credentials_table(), f"MER#{merchant_id}", "GOLIVE#")
    return sorted(rows, key=lambda r: r["sk"], reverse=True)


def status(p: Principal) -> dict[str, Any]:
    """``GET /v1/go-live``."""
    merchant = merchant_item(p.merchant_id)
    result = evaluate(merchant)
    reviews = [review_view(r) for r in _reviews(p.merchant_id)]
    if merchant.get("live_enabled"):
        state = "approved"
    elif merchant.get("pending_review"):
        state = "in_review"
    else:
        state = result["readiness"]
    return {"object": "go_live", "status": state, "live_enabled": bool(merchant.get("live_enabled")),
            "score": result["score"], "blocking_issues": result["blocking_issues"], "checks": result["checks"],
            "latest_review": reviews[0] if reviews else None, "reviews": reviews[:20],
            "evaluated_at": result["evaluated_at"]}


def request_review(p: Principal, note: str | None = None) -> dict[str, Any]:
    """``POST /v1/go-live/reviews``: ask an operator to enable live payments (one pending review at a time)."""
    merchant = merchant_item(p.merchant_id)
    if merchant.get("live_enabled"):
        raise Conflict("live payments are already enabled for this account", status="approved")
    if merchant.get("pending_review"):
        raise Conflict(f"review {merchant['pending_review']} is already waiting for an operator", status="in_review",
                       review_id=merchant["pending_review"])
    result = evaluate(merchant)
    now = clock.now()
    review_id = new_id("glr")
    item = {
        "pk": f"MER#{p.merchant_id}", "sk": f"GOLIVE#{clock.sortable(now)}#{review_id}", "id": review_id,
        "merchant_id": p.merchant_id, "status": "requested", "readiness": result["readiness"], "score": result["score"],
        "blocking_issues": result["blocking_issues"], "checks": result["checks"], "note": note,
        "requested_at": clock.iso(now), "requested_by": p.key_id,
    }
    table = dal.credentials_table()
    try:
        dal.transact([
            dal.put_action(table, item, condition="attribute_not_exists(sk)"),
            dal.update_action(table, f"MER#{p.merchant_id}", "MER", "SET pending_review = :id",
                              condition="attribute_exists(pk) AND attribute_not_exists(pending_review) "
                                        "AND (attribute_not_exists(live_enabled) OR live_enabled = :no)",
                              vals=dal.values(id=review_id, no=False)),
        ])
    except dal.ConditionFailed:
        raise Conflict("a review is already pending, or live payments were just enabled", status="in_review") from None
    return review_view(item)


def _pending(merchant_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    merchant = merchant_item(merchant_id)
    review_id = merchant.get("pending_review")
    if not review_id:
        raise NotFound(f"merchant {merchant_id} has no go-live review waiting for a decision")
    for row in _reviews(merchant_id):
        if row["id"] == review_id:
            return merchant, row
    raise NotFound(f"review {review_id} not found")


def _copy_live_enabled(merchant_id: str, enabled: bool) -> int:
    keys = list(dal.query_owner(dal.credentials_table(), f"MER#{merchant_id}", index="by_merchant",
                                sk_from="KEY#", sk_to="KEY#~"))
    for key in keys:
        dal.update(dal.credentials_table(), key["pk"], "KEY", "SET live_enabled = :v", vals=dal.values(v=enabled),
                   condition="attribute_exists(pk)")
    return len(keys)


def _decide(merchant_id: str, decision: str, *, operator: str, reason: str | None) -> dict[str, Any]:
    merchant, review = _pending(merchant_id)
    now = clock.iso(clock.now())
    table = dal.credentials_table()
    merchant_change = "REMOVE pending_review"
    vals = dal.values(id=review["id"])
    if decision == "approved":
        merchant_change = "SET live_enabled = :yes, live_enabled_at = :now REMOVE pending_review"
        vals |= dal.values(yes=True, now=now)
    fields = {"status": decision, "decided_at": now, "decided_by": operator, "reason": reason}
    present = {k: v for k, v in fields.items() if v is not None}
    try:
        dal.transact([
            dal.update_action(table, review["pk"], review["sk"], "SET " + ", ".join(f"#{k} = :{k}" for k in present),
                              condition="#status = :requested", names={f"#{k}": k for k in present},
                              vals=dal.values(**present, requested="requested")),
            dal.update_action(table, f"MER#{merchant_id}", "MER", merchant_change, condition="pending_review = :id",
                              vals=vals),
        ])
    except dal.ConditionFailed:
        raise Conflict("the review was decided by someone else first") from None
    updated = _copy_live_enabled(merchant_id, True) if decision == "approved" else 0
    return {**review_view({**review, **fields}), "merchant_id": merchant_id, "live_enabled": decision == "approved",
            "keys_updated": updated}


def approve(merchant_id: str, *, operator: str, force: bool = False, reason: str | None = None) -> dict[str, Any]:
    """Operator action (``tahsil go-live approve``): enable live payments. Refused while checklist items fail,
    unless ``force`` (the operator has evidence from outside Tahsil; ``reason`` records it)."""
    merchant, _ = _pending(merchant_id)
    result = evaluate(merchant)
    if result["blocking_issues"] and not force:
        items = "; ".join(f"{b['item']}: {b['message']}" for b in result["blocking_issues"])
        raise Conflict(f"cannot approve while checklist items fail (score {result['score']}%): {items} "
                       "(--force approves anyway, with a --reason)")
    if force and result["blocking_issues"] and not reason:
        raise InvalidRequest("a forced approval needs a reason", param="reason")
    return _decide(merchant_id, "approved", operator=operator, reason=reason)


def reject(merchant_id: str, *, operator: str, reason: str) -> dict[str, Any]:
    """Operator action (``tahsil go-live reject``): the merchant sees the reason and may request again."""
    if not reason or not reason.strip():
        raise InvalidRequest("a rejection needs a reason the merchant will read", param="reason")
    return _decide(merchant_id, "rejected", operator=operator, reason=reason.strip())
