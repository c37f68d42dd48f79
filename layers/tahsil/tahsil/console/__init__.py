"""The developer console: account profile and payout settings, the credential guards report, go-live
readiness and reviews, overview, payment trace and fulfillment, redrive, and the operator's merchant
set-up (``ops``). Keys, signing, dashboard sessions and account limits are ``tahsil.identity``'s.

May import ``tahsil.payments``, ``tahsil.webhooks``, ``tahsil.identity``, ``tahsil.store`` and
``tahsil.kernel``; never ``tahsil.api``.
"""
