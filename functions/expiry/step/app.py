"""Step Functions task of the expiry timer: warn or expire, as a conditional write."""

from tahsil.api import workers
from tahsil.payments import expiry

handler = workers.task_handler(expiry.timer_step)
