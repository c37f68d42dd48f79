"""ProcessorRecoveryQueue -> finish payments whose request died between its phases (tahsil.payments.processing).

Each message names a payment and the reference of the operation that was in flight. The worker asks
the processor for that operation's outcome by reference and commits it (or records a modification's
acknowledgement). When the processor cannot tell yet, the record fails and SQS delivers it again after
the visibility timeout; after maxReceiveCount receives it goes to ProcessorRecoveryDLQ (alarmed).
"""

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import EventType

from tahsil.api.workers import batch_handler
from tahsil.kernel.telemetry import logger
from tahsil.payments import processing


def recover(record: Any) -> str:
    message = json.loads(record.body)
    done = processing.recover(str(message["payment_id"]), str(message["reference"]))
    logger.info("recovery", extra={"payment_id": message["payment_id"], "reference": message["reference"], "result": done})
    return done


handler = batch_handler(EventType.SQS, recover)
