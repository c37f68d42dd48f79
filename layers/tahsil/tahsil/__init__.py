"""Tahsil's shared layer: the code every Lambda function imports.

Shipped to Lambda as one layer (``layers/tahsil``) and installed locally with
``pip install -e .``, so handlers import it the same way in both places.

The map (a package may import only the packages below it; ``payments``, ``webhooks`` and
``identity`` are independent of each other). import-linter checks it (``.importlinter``, run by
``make test``).

    tahsil.api        HTTP contract: resolver, envelope, authentication (the route -> scope table),
                      rate limits, idempotency, request logs, tracing, worker wrappers
    tahsil.console    the console's features: account profile and payouts, guards report,
                      go-live, overview, trace, redrive, operator set-up
    tahsil.payments | tahsil.webhooks | tahsil.identity
                      payments, transactions, intents, checkout, cards, fraud, expiry |
                      endpoints, fan-out, deliveries, retries, events API, SSRF guard |
                      API keys, request signing, dashboard sessions (Cognito), roles, Principals
                      built from a key or a session, account limits (API version pin, rate limits)
    tahsil.connectors processors behind one interface (simulator, adyen), per-merchant
                      connector settings and their Secrets Manager credentials
    tahsil.store      DynamoDB access, card/secret vault, AWS clients, credential guards
    tahsil.kernel     errors, ids, clock, settings, money, versions, the Principal value and scope names,
                      outbox event rows, model bases, logger and metrics

Handlers (``functions/*/app.py``) sit above ``tahsil.api``: endpoint -> ``tahsil.api.http``
-> the domain module (``tahsil.payments.payments``) -> ``tahsil.store.dal``. Each package keeps
its request and response models in its own ``models.py``.
"""

__version__ = "0.1.0"
