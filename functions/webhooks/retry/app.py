"""Step Functions task: one retry attempt; the answer tells the state machine to wait again or stop."""

from tahsil.api import workers
from tahsil.webhooks import delivery

handler = workers.task_handler(delivery.retry_step)
