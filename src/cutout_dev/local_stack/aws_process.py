"""moto's server in a process of its own, for ``MotoServer(own_process=True)``.

    python -m cutout_dev.local_stack.aws_process

Prints the port it listens on (127.0.0.1, chosen by the OS) as its first line, then serves until its standard
input closes: the parent closes it to stop the server, and a parent that dies closes it too.
"""

from __future__ import annotations

import logging
import sys
import threading

from cutout_dev.local_stack.aws import serve


def main() -> int:
    # One log line per request would cost more than the request; errors still reach stderr.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = serve()
    print(server.server_port, flush=True)

    def stop_when_parent_lets_go() -> None:
        sys.stdin.read()  # returns at EOF: stop(), or the parent's end
        server.shutdown()

    threading.Thread(target=stop_when_parent_lets_go, name="parent-watch", daemon=True).start()
    server.serve_forever(poll_interval=0.05)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
