"""ProcessorRecoveryQueue -> finish payments whose request died between its phases (tahsil.payments.recovery).

Each message names a payment and the reference of the operation that was in flight. The worker completes
it (never re-sends an authorization) and, while the processor cannot tell yet, queues itself again with
backoff until the deadline (``tahsil.payments.recovery``). A message that fails (an exception) is delivered
again after the visibility timeout; after maxReceiveCount receives it goes to ProcessorRecoveryDLQ (alarmed).
"""

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import EventType

from tahsil.api.workers import batch_handler
from tahsil.kernel.telemetry import logger
from tahsil.payments import recovery


def recover(record: Any) -> str:
    message = json.loads(record.body)
    done = recovery.recover(str(message["payment_id"]), str(message["reference"]), int(message.get("attempt", 0)))
    logger.info("recovery", extra={"payment_id": message["payment_id"], "reference": message["reference"], "result": done})
    return done


handler = batch_handler(EventType.SQS, recover)
