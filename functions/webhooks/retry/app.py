"""Step Functions task: one retry attempt; the answer tells the state machine to wait again or stop."""

from tahsil.api import workers
from tahsil.webhooks import webhooks

handler = workers.task_handler(webhooks.retry_step)
