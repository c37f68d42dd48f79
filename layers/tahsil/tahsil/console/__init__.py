"""The developer console: account profile and settings, API keys and request signing secrets, the
credential guards report, go-live readiness and reviews, overview, payment trace and fulfillment,
dashboard sign-in (Cognito), and the operator's merchant set-up (``ops``).

May import ``tahsil.payments``, ``tahsil.webhooks``, ``tahsil.store`` and ``tahsil.kernel``;
never ``tahsil.api``.
"""
