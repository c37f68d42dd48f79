"""The account profile (``GET/PATCH /v1/account``): business details and the payout destination.

Both live on the merchant item (``MER#<id>`` / ``MER``), the account's one row:
- ``profile``: legal name, MCC, support email, phone and URL, and ``profile_id`` (``prf_...``), a new
  id at every change, which go-live readiness cites as its evidence;
- ``payout_destination``: the bank details, checked (``tahsil.console.banking``) before they are stored,
  and stored sealed: AES-256-GCM under the secrets key (``tahsil.store.crypto.secrets_vault``), with the
  merchant and destination ids as associated data. Only the scheme, country, bank code and last
  4 are kept in clear; no API answer ever carries the full IBAN or account number.

Payouts themselves do not exist yet (there is no acquirer connector), so a destination whose
details pass the bank checks is ``verified``: the same simulation as the test cards. Go-live
also asks that its holder is the business's legal name.
"""

from __future__ import annotations

from typing import Any

from tahsil.console import banking
from tahsil.console.models import AccountUpdate
from tahsil.kernel import clock
from tahsil.kernel.errors import NotFound
from tahsil.kernel.ids import new_id
from tahsil.kernel.principal import Principal
from tahsil.store import crypto, dal

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
                                       "bank_code", "last4", "account_type", "status", "verified_at")}


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


def _payout(merchant_id: str, req: Any, now: str) -> dict[str, Any]:
    account = banking.check(req.currency, iban=req.iban, routing_number=req.routing_number,
                            account_number=req.account_number)
    payout_id = new_id("po")
    return {
        "id": payout_id, "currency": account.currency, "scheme": account.scheme, "country": account.country,
        "account_holder_name": req.account_holder_name, "bank_name": req.bank_name, "bank_code": account.bank_code,
        "last4": account.last4, "account_type": req.account_type if account.scheme == "aba" else None,
        "status": "verified", "verified_at": now,
        "sealed": crypto.secrets_vault.encrypt(account.account, context=f"payout/{merchant_id}/{payout_id}",
                                                merchant=merchant_id),
    }


def update(p: Principal, req: AccountUpdate) -> dict[str, Any]:
    """Change what was sent; every field is checked before anything is written."""
    item = merchant_item(p.merchant_id)
    now = clock.iso(clock.now())
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
    sets, vals = [], {}
    payout = None
    if "payout_destination" in sent and req.payout_destination is not None:
        payout = _payout(p.merchant_id, req.payout_destination, now)
        sets.append("payout_destination = :payout")
        vals["payout"] = payout
    if changed_profile:
        profile |= {"profile_id": new_id("prf"), "updated_at": now}
        sets.append("profile = :profile")
        vals["profile"] = profile
    expression = "SET " + ", ".join(sets) if sets else None
    remove = "payout_destination" in sent and req.payout_destination is None
    if remove:
        expression = (expression + " " if expression else "") + "REMOVE payout_destination"
    if expression:
        dal.update(dal.credentials_table(), f"MER#{p.merchant_id}", "MER", expression,
                   vals=dal.values(**vals) if vals else None, condition="attribute_exists(pk)")
    updated = {**item, "profile": profile}
    if payout is not None:
        updated["payout_destination"] = payout
    if remove:
        updated.pop("payout_destination", None)
    return view(updated)
