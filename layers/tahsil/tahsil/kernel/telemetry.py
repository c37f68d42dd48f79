"""The one structured logger and the one EMF metrics sink every module writes to.

Powertools' ``Logger`` and ``Metrics`` are process-wide; the Lambda entry points
(``tahsil.api.http.entrypoint``, ``tahsil.api.workers``) inject the request context and flush
the metrics after each invocation.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="tahsil")
metrics = Metrics(namespace="Tahsil", service="tahsil")
