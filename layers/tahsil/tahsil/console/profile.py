"""The account profile (``GET/PATCH /v1/account``): business details and the payout destination.

Both live on the merchant item (``MER#<id>`` / ``MER``), the account's one row:
- ``profile``: legal name, MCC, support email, phone and URL, and ``profile_id`` (``prf_...``), a new
  id at every change, which go-live readiness cites as its evidence;
- ``payout_destination``: the bank details, checked (``tahsil.console.banking``) before they are stored,
  and stored sealed: AES-256-GCM under the secrets key (``tahsil.store.crypto.secrets_vault``), with the
  merchant and destination ids as associated data. Only the scheme, country, bank code and last
  4 are kept in clear; no API answer ever carries the full IBAN or account number.

The payout destination is where live money goes, so changing it (setting, replacing or removing it) is a
live power (issue 28): a live secret key holding ``payouts:write``, or an owner's dashboard session that
passed MFA within the last 15 minutes; anything else is a 403 naming why. A change is one transaction: the
merchant item (conditional on the destination the caller saw), an audit row (``AUD#<merchant>``), and an
``account.updated`` event in live mode with the old and new last four digits. It holds payouts for
``PAYOUT_COOLING_OFF`` (``hold_until``), and the new destination is ``unverified``: the caller's word
verifies nothing. An operator verifies it after checking ownership out of band (``verify_payout``,
``tahsil merchants verify-payout``); go-live asks for a verified destination whose holder is the legal name.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from tahsil.console import banking
from tahsil.console.models import AccountUpdate
from tahsil.identity import sessions
from tahsil.kernel import clock
from tahsil.kernel.errors import ConcurrentUpdate, InvalidRequest, LiveKeyRequired, NotFound
from tahsil.kernel.events import RequestContext, event_row
from tahsil.kernel.ids import new_id
from tahsil.kernel.principal import Principal
from tahsil.store import crypto, dal

PAYOUT_COOLING_OFF = dt.timedelta(hours=72)  # payouts wait this long after the destination changes (docs/console.md)
AUDIT_TTL = dt.timedelta(days=400)  # a year and a bit: PCI DSS 10.5.1 keeps audit trails a year
PROFILE_FIELDS = ("legal_name", "mcc", "support_email", "support_phone", "support_url")


def merchant_item(merchant_id: str) -> dict[str, Any]:
    item = dal.get(dal.credentials_table(), f"MER#{merchant_id}", "MER")
    if item is None:
        raise NotFound("merchant not found")
    return item


def payout_view(payout: dict[str, Any] | None) -> dict[str, Any] | None:
    if not payout:
        return None
    return {k: payout.get(k) for k in ("id", "currency", "scheme", "country", "account_holder_name", "bank_name",
                                       "bank_code", "last4", "account_type", "status", "verified_at", "hold_until")}


def view(item: dict[str, Any]) -> dict[str, Any]:
    profile = item.get("profile") or {}
    return {
        "id": item["merchant_id"], "object": "account", "name": item.get("name", ""),
        **{name: profile.get(name) for name in PROFILE_FIELDS},
        "profile_id": profile.get("profile_id"),
        "payout_destination": payout_view(item.get("payout_destination")),
        "api_version": item.get("api_version"), "live_enabled": bool(item.get("live_enabled")),
        "created_at": item.get("created_at"), "updated_at": profile.get("updated_at"),
    }


def get(p: Principal) -> dict[str, Any]:
    return view(merchant_item(p.merchant_id))


def _payout(merchant_id: str, req: Any, now: dt.datetime) -> dict[str, Any]:
    account = banking.check(req.currency, iban=req.iban, routing_number=req.routing_number,
                            account_number=req.account_number)
    payout_id = new_id("po")
    return {
        "id": payout_id, "currency": account.currency, "scheme": account.scheme, "country": account.country,
        "account_holder_name": req.account_holder_name, "bank_name": req.bank_name, "bank_code": account.bank_code,
        "last4": account.last4, "account_type": req.account_type if account.scheme == "aba" else None,
        # the checks prove the number is well formed, not whose it is: verified only by an operator (verify_payout)
        "status": "unverified", "verified_at": None, "hold_until": clock.iso(now + PAYOUT_COOLING_OFF),
        "sealed": crypto.secrets_vault.encrypt(account.account, context=f"payout/{merchant_id}/{payout_id}",
                                                merchant=merchant_id),
    }


def require_payout_power(p: Principal) -> None:
    """Payout details are live and the owner's: a live secret key with ``payouts:write``, or an owner's dashboard
    session that passed MFA in the last 15 minutes. Anything else is a 403 that says which of these is missing."""
    if p.key_type == "dashboard":
        if "payouts:write" not in p.scopes:
            raise LiveKeyRequired(f"only an owner may change the payout bank account (your role is {p.role!r})",
                                  param="payout_destination", required_scope="payouts:write")
        sessions.require_recent_mfa(p, "changing the payout bank account")
        return
    if not p.livemode:
        raise LiveKeyRequired("the payout bank account receives live money: change it with a live secret key "
                              "(sk_live_...) holding payouts:write, or as an owner in the dashboard; a test key "
                              "cannot", param="payout_destination", required_scope="payouts:write")
    p.require("payouts:write")


def update(p: Principal, req: AccountUpdate, ctx: RequestContext | None = None) -> dict[str, Any]:
    """Change what was sent; every field is checked before anything is written.

    A change of the payout destination is checked first (``require_payout_power``), then written in one
    transaction with its audit row and its ``account.updated`` event (``_payout_change``)."""
    payout_sent = "payout_destination" in req.model_fields_set
    if payout_sent:
        require_payout_power(p)
    item = merchant_item(p.merchant_id)
    now = clock.now()
    sent = req.model_fields_set
    profile = dict(item.get("profile") or {})
    changed_profile = False
    for name in PROFILE_FIELDS:
        if name in sent:
            value = getattr(req, name)
            if value is None:
                profile.pop(name, None)
            else:
                profile[name] = value
            changed_profile = True
    if changed_profile:
        profile |= {"profile_id": new_id("prf"), "updated_at": clock.iso(now)}
    if payout_sent:
        payout = _payout(p.merchant_id, req.payout_destination, now) if req.payout_destination is not None else None
        return view(_payout_change(p, item, payout, profile if changed_profile else None, ctx, now))
    if changed_profile:
        dal.update(dal.credentials_table(), f"MER#{p.merchant_id}", "MER", "SET profile = :profile",
                   vals=dal.values(profile=profile), condition="attribute_exists(pk)")
    return view({**item, "profile": profile})


def _payout_change(p: Principal, item: dict[str, Any], payout: dict[str, Any] | None, profile: dict[str, Any] | None,
                   ctx: RequestContext | None, now: dt.datetime) -> dict[str, Any]:
    """The merchant item, its audit row and its live ``account.updated`` event, in one transaction. The write is
    conditional on the destination the caller read, so two changes at once cannot both be announced as the
    successor of the same old one."""
    old = item.get("payout_destination")
    version = int(item.get("account_version") or 0) + 1
    sets = ["account_version = :version"]
    vals: dict[str, Any] = {"version": version}
    if payout is not None:
        sets.append("payout_destination = :payout")
        vals["payout"] = payout
    if profile is not None:
        sets.append("profile = :profile")
        vals["profile"] = profile
    expression = "SET " + ", ".join(sets) + ("" if payout is not None else " REMOVE payout_destination")
    if old:
        condition = "payout_destination.id = :old_id"
        vals["old_id"] = old["id"]
    else:
        condition = "attribute_exists(pk) AND attribute_not_exists(payout_destination)"
    updated = {**item, "account_version": version}
    if profile is not None:
        updated["profile"] = profile
    if payout is not None:
        updated["payout_destination"] = payout
    else:
        updated.pop("payout_destination", None)
    shown = view(updated)
    previous = {"payout_destination": {"id": old["id"], "last4": old["last4"]} if old else None}
    actor = p.user if p.key_type == "dashboard" else p.key_id
    audit = {
        "pk": f"AUD#{p.merchant_id}", "sk": f"{clock.sortable(now)}#{new_id('aud')}", "merchant_id": p.merchant_id,
        "action": "payout_destination.updated", "at": clock.iso(now), "actor": actor, "actor_type": p.key_type,
        "mode": p.mode, "request_id": ctx.request_id if ctx else None,
        "old": {"id": old["id"], "last4": old["last4"]} if old else None,
        "new": {"id": payout["id"], "last4": payout["last4"]} if payout else None,
        "hold_until": payout["hold_until"] if payout else None,
        "ttl": int((now + AUDIT_TTL).timestamp()),
    }
    live = dataclasses.replace(p, mode="live")  # the payout is live money: live endpoints hear of it
    event = event_row(live, ctx, type_="account.updated", obj=shown, sequence=version, previous=previous, now=now)
    try:
        dal.transact([
            dal.update_action(dal.credentials_table(), f"MER#{p.merchant_id}", "MER", expression, condition=condition,
                              vals=dal.values(**vals)),
            dal.put_action(dal.credentials_table(), audit),
            dal.put_action(dal.payments_table(), event),
        ])
    except dal.ConditionFailed:
        raise ConcurrentUpdate("the payout bank account was changed by another request at the same moment; "
                               "read the account and try again") from None
    return updated


def verify_payout(merchant_id: str, *, operator: str, reason: str, payout_id: str | None = None) -> dict[str, Any]:
    """An operator verified, out of band (a bank letter, a statement, a micro-deposit), that the destination is the
    business's own. Recorded in the audit trail; the cooling-off hold still runs its course."""
    if not reason or not reason.strip():
        raise InvalidRequest("say how the account's ownership was checked (--reason)", param="reason")
    item = merchant_item(merchant_id)
    payout = item.get("payout_destination")
    if not payout or (payout_id and payout["id"] != payout_id):
        raise NotFound("no such payout destination on this account", param="payout_id")
    now = clock.now()
    audit = {"pk": f"AUD#{merchant_id}", "sk": f"{clock.sortable(now)}#{new_id('aud')}", "merchant_id": merchant_id,
             "action": "payout_destination.verified", "at": clock.iso(now), "actor": operator, "actor_type": "operator",
             "reason": reason.strip(), "new": {"id": payout["id"], "last4": payout["last4"]},
             "ttl": int((now + AUDIT_TTL).timestamp())}
    try:
        dal.transact([
            dal.update_action(dal.credentials_table(), f"MER#{merchant_id}", "MER",
                              "SET payout_destination.#st = :verified, payout_destination.verified_at = :now",
                              condition="payout_destination.id = :id", names={"#st": "status"},
                              vals=dal.values(verified="verified", now=clock.iso(now), id=payout["id"])),
            dal.put_action(dal.credentials_table(), audit),
        ])
    except dal.ConditionFailed:
        raise ConcurrentUpdate("the payout destination changed meanwhile; look again") from None
    return payout_view({**payout, "status": "verified", "verified_at": clock.iso(now)}) or {}


def audit_trail(merchant_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """The account's audit rows, newest first (operators; tahsil merchants audit)."""
    rows, _ = dal.query_page(dal.credentials_table(), f"AUD#{merchant_id}", newest_first=True, page_size=limit,
                             consistent=True)
    return rows
