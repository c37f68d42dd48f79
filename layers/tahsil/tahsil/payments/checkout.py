"""The hosted checkout page: HTML rendered on the server from the intent, script and styles as files.

Every merchant-supplied string goes through ``html.escape`` (attributes included). The page
carries no inline script or style, so the Content-Security-Policy can be strict: scripts and
styles from this origin only, requests to this origin only, no framing, no <base>, forms
posting only here. ``Referrer-Policy: no-referrer`` keeps the client secret in the page's URL
from leaking to the merchant's success page, and ``no-store`` keeps the page out of caches.
"""

from __future__ import annotations

from html import escape
from typing import Any

from tahsil.kernel.money import MINOR_UNITS
from tahsil.kernel.versions import LATEST

CSP = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
])

PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "KRW": "₩", "TRY": "₺"}


def format_money(amount: int, currency: str) -> str:
    """``format_money(123456, "USD") == "$1,234.56"``; IQD has three decimals, JPY none."""
    exponent = MINOR_UNITS[currency]
    major, minor = divmod(amount, 10**exponent)
    text = f"{major:,}" + (f".{minor:0{exponent}d}" if exponent else "")
    symbol = _SYMBOLS.get(currency)
    return f"{symbol}{text}" if symbol else f"{text} {currency}"


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


_LOCK = ('<svg class="icon" viewBox="0 0 24 24" width="14" height="14" aria-hidden="true" focusable="false">'
         '<path fill="currentColor" d="M12 1a5 5 0 0 0-5 5v3H6a2 2 0 0 0-2 2v10a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V11a2 2 0 0 0-2-2h-1V6'
         'a5 5 0 0 0-5-5zm-3 8V6a3 3 0 1 1 6 0v3H9z"/></svg>')

_ICONS = {
    "succeeded": ('ok', '<path fill="currentColor" d="M9 16.2 4.8 12l-1.4 1.4L9 19 21 7l-1.4-1.4z"/>'),
    "expired": ('muted', '<path fill="currentColor" d="M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm0 18a8 8 0 1 1 0-16 8 8 0 0 1'
                         ' 0 16zm.5-13H11v6l5.2 3.2.8-1.3-4.5-2.7z"/>'),
    "canceled": ('muted', '<path fill="currentColor" d="M18.3 5.7 12 12l6.3 6.3-1.4 1.4L10.6 13.4 4.3 19.7 2.9 18.3 9.2 12'
                          ' 2.9 5.7l1.4-1.4 6.3 6.3 6.3-6.3z"/>'),
    "requires_action": ('warn', '<path fill="currentColor" d="M12 1 3 5v6c0 5.5 3.8 10.7 9 12 5.2-1.3 9-6.5 9-12V5z"/>'),
    "locked": ('warn', '<path fill="currentColor" d="M12 1a5 5 0 0 0-5 5v3H6a2 2 0 0 0-2 2v10a2 2 0 0 0 2 2h12a2 2 0 0 0'
                       ' 2-2V11a2 2 0 0 0-2-2h-1V6a5 5 0 0 0-5-5zm-3 8V6a3 3 0 1 1 6 0v3H9z"/>'),
    "invalid": ('warn', '<path fill="currentColor" d="M1 21h22L12 2zm12-3h-2v-2h2zm0-4h-2v-4h2z"/>'),
}


def _document(title: str, body: str, assets: dict[str, str], *, script: bool) -> str:
    script_tag = f'\n<script src="{_e(assets["checkout.js"])}" defer></script>' if script else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex, nofollow">
<title>{_e(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{_e(assets["checkout.css"])}">{script_tag}
</head>
<body>
{body}
<footer class="foot">{_LOCK} <span>Payments secured by <strong>Tahsil</strong></span></footer>
</body>
</html>
"""


def _merchant_line(state: dict[str, Any]) -> str:
    name = state.get("merchant_name") or "Merchant"
    badge = "" if state.get("livemode") else '<span class="badge" title="No real money moves in test mode">Test mode</span>'
    return (f'<div class="merchant"><span class="avatar" aria-hidden="true">{_e(name[:1].upper())}</span>'
            f'<span class="merchant-name" id="merchant-name">{_e(name)}</span>{badge}</div>')


_NOTICES = {
    "succeeded": ("Payment complete", "{amount} was paid to {merchant}. You can close this page or return to the store.",
                  "Return to {merchant}", "redirect_url"),
    "expired": ("This payment link has expired", "Payment links are valid for one hour, and this one was not used in time. "
                "Nothing was charged. Return to {merchant} to start again.", "Return to {merchant}", "cancel_url"),
    "canceled": ("This payment was canceled", "{merchant} canceled this payment. Nothing was charged.",
                 "Return to {merchant}", "cancel_url"),
    "requires_action": ("Confirm this payment with your bank", "Your bank asked you to confirm this payment of "
                        "{amount} to {merchant}. Nothing is charged until you do.", "Continue to your bank",
                        "authentication_url"),
    "locked": ("This payment is locked", "There were too many declined attempts, so this link cannot be used again. "
               "Nothing was charged. Return to {merchant} to try again.", "Return to {merchant}", "cancel_url"),
}


def render_notice(state: dict[str, Any], assets: dict[str, str]) -> str:
    """A clear page instead of a form: paid, expired, canceled or locked."""
    status = state["status"]
    title, text, button, link_key = _NOTICES[status]
    tone, icon = _ICONS[status]
    merchant = state.get("merchant_name") or "the store"
    amount = format_money(state["amount"], state["currency"])
    fill = {"merchant": f"<strong>{_e(merchant)}</strong>", "amount": f"<strong>{_e(amount)}</strong>"}
    link = state.get(link_key)
    action = (f'<a class="button" id="return-link" href="{_e(link)}">{_e(button.format(merchant=merchant))}</a>'
              if link else "")
    description = f'<p class="notice-desc">{_e(state["description"])}</p>' if state.get("description") else ""
    body = f"""<main class="notice-page">
<section class="notice" data-status="{_e(status)}" aria-labelledby="notice-title">
{_merchant_line(state)}
<div class="notice-icon {tone}" aria-hidden="true"><svg viewBox="0 0 24 24" width="28" height="28">{icon}</svg></div>
<h1 id="notice-title">{_e(title)}</h1>
<p class="notice-amount">{_e(amount)}</p>{description}
<p class="notice-text">{text.format(**fill)}</p>
{action}
</section>
</main>"""
    return _document(f"{title} · {merchant}", body, assets, script=False)


def render_invalid(assets: dict[str, str]) -> str:
    tone, icon = _ICONS["invalid"]
    body = f"""<main class="notice-page">
<section class="notice" data-status="invalid" aria-labelledby="notice-title">
<div class="notice-icon {tone}" aria-hidden="true"><svg viewBox="0 0 24 24" width="28" height="28">{icon}</svg></div>
<h1 id="notice-title">This payment link is not valid</h1>
<p class="notice-text">Check that you opened the whole link you were given, or return to the store and start again.
Nothing was charged.</p>
</section>
</main>"""
    return _document("Payment link not valid", body, assets, script=False)


def render_form(state: dict[str, Any], assets: dict[str, str]) -> str:
    merchant = state.get("merchant_name") or "the store"
    amount = format_money(state["amount"], state["currency"])
    description = f'<p class="description">{_e(state["description"])}</p>' if state.get("description") else ""
    remaining = state["remaining_attempts"]
    last_error = state.get("last_payment_error")
    alert_hidden, alert_text = " hidden", ""
    if last_error:
        alert_hidden = ""
        plural = "attempt" if remaining == 1 else "attempts"
        alert_text = (f"Your last attempt was declined: {_e(last_error['message'].removeprefix('card declined: '))}. "
                      f"You have {remaining} {plural} left.")
    body = f"""<main class="checkout">
<section class="summary" aria-label="Order summary">
{_merchant_line(state)}
<p class="label">Amount due</p>
<p class="amount" id="amount">{_e(amount)}</p>
{description}
</section>
<section class="pay" aria-labelledby="pay-title">
<h1 id="pay-title">Pay with card</h1>
<div id="form-error" class="alert" role="alert"{alert_hidden}>{alert_text}</div>
<form id="checkout-form" novalidate data-intent="{_e(state["id"])}" data-remaining="{remaining}" data-api-version="{LATEST}">
<div class="field">
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="email" inputmode="email" spellcheck="false" maxlength="254"
 required aria-describedby="email-error" value="{_e(state.get("customer_email"))}">
<p class="field-error" id="email-error" aria-live="polite"></p>
</div>
<div class="field">
<label for="card-number">Card number</label>
<div class="input-wrap">
<input id="card-number" name="cardnumber" type="text" inputmode="numeric" autocomplete="cc-number" spellcheck="false"
 placeholder="1234 1234 1234 1234" maxlength="23" required aria-describedby="card-brand-name card-number-error">
<span class="brand" id="card-brand" aria-hidden="true"></span>
<span class="sr-only" id="card-brand-name" aria-live="polite"></span>
</div>
<p class="field-error" id="card-number-error" aria-live="polite"></p>
</div>
<div class="row">
<div class="field">
<label for="card-expiry">Expiry date</label>
<input id="card-expiry" name="exp-date" type="text" inputmode="numeric" autocomplete="cc-exp" spellcheck="false"
 placeholder="MM / YY" maxlength="7" required aria-describedby="card-expiry-error">
<p class="field-error" id="card-expiry-error" aria-live="polite"></p>
</div>
<div class="field">
<label for="card-cvc">Security code</label>
<input id="card-cvc" name="cvc" type="text" inputmode="numeric" autocomplete="cc-csc" spellcheck="false"
 placeholder="CVC" maxlength="4" required aria-describedby="card-cvc-error">
<p class="field-error" id="card-cvc-error" aria-live="polite"></p>
</div>
</div>
<div class="field">
<label for="card-name">Name on card</label>
<input id="card-name" name="ccname" type="text" autocomplete="cc-name" spellcheck="false" maxlength="100" required
 aria-describedby="card-name-error">
<p class="field-error" id="card-name-error" aria-live="polite"></p>
</div>
<button type="submit" class="pay-button" id="pay-button"><span class="spinner" aria-hidden="true"></span>
<span class="pay-label">Pay {_e(amount)}</span></button>
<p class="sr-only" id="progress" aria-live="polite"></p>
</form>
<noscript><p class="alert">This payment page needs JavaScript to send your card details securely.</p></noscript>
<p class="cancel"><a id="cancel-link" href="{_e(state["cancel_url"])}">Cancel and return to {_e(merchant)}</a></p>
</section>
</main>"""
    return _document(f"Pay {merchant} · {amount}", body, assets, script=True)


def render(state: dict[str, Any] | None, assets: dict[str, str]) -> tuple[int, str]:
    """(HTTP status, HTML) for the checkout page of this state (None: a bad link)."""
    if state is None:
        return 404, render_invalid(assets)
    if state["status"] == "created":
        return 200, render_form(state, assets)
    return 200, render_notice(state, assets)
