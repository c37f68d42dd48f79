"""An execution environment's entry point, as ``/var/runtime/bootstrap`` is in Lambda.

``python -m tahsil_local.bootstrap app.handler``, started by ``tahsil_local.runtime`` in the
function's code directory with ``AWS_LAMBDA_RUNTIME_API`` set: it runs ``awslambdaric``, the
runtime interface client of AWS's Python images, which imports the handler and then loops on
the Runtime API's ``invocation/next``. One thing is added for a laptop: the environment ends
itself if the local runtime that started it is gone (killed without a chance to stop it).
"""

from __future__ import annotations

import os
import sys
import threading
import time


def _exit_with_parent(parent: int) -> None:
    while True:
        time.sleep(1)
        if os.getppid() != parent:
            os._exit(0)


def main() -> None:
    parent = os.environ.pop("TAHSIL_RUNTIME_PARENT", "")
    if parent.isdigit():
        threading.Thread(target=_exit_with_parent, args=(int(parent),), daemon=True, name="parent-watch").start()
    from awslambdaric.__main__ import main as run

    run([sys.argv[0], *sys.argv[1:2]])


if __name__ == "__main__":
    main()
