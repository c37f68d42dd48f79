"""Step Functions task of the expiry timer: warn or expire, as a conditional write."""

from tahsil import expiry, workers

handler = workers.task_handler(expiry.timer_step)
