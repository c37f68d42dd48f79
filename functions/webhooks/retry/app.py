"""Step Functions task: one retry attempt; the answer tells the state machine to wait again or stop."""

from tahsil import webhooks, workers

handler = workers.task_handler(webhooks.retry_step)
