"""The one structured logger and the one EMF metrics sink every module writes to.

Powertools' ``Logger`` and ``Metrics`` are process-wide; the Lambda entry points
(``tahsil.api.http.entrypoint``, ``tahsil.api.workers``) inject the request context and flush
the metrics after each invocation.
"""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics

# Many calls emit no metric (a read, a refusal before the route), and that is normal: Powertools
# would print "No application metrics to publish" to the log for each of them.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

logger = Logger(service="tahsil")
metrics = Metrics(namespace="Tahsil", service="tahsil")
