"""Step Functions task of the expiry time wheel: sweep one page of a bucket's deadlines, each a conditional write."""

from tahsil.api import workers
from tahsil.payments import expiry

handler = workers.task_handler(expiry.sweep)
