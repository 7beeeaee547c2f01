"""gunicorn's gthread worker, with its own error pages in JSON.

gunicorn answers some requests before Flask sees them (a request line over
4094 bytes: 414; a header over 8190 bytes: 431; a malformed request: 400) with
an HTML page. The API's contract is JSON errors everywhere, so this worker
swaps gunicorn's page writer for one that writes {"errors": ["code"]}.
"""

from __future__ import annotations

import json

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    body = json.dumps({"errors": [reason.lower().replace(" ", "_").replace("-", "_")]})
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, (head + body).encode("latin1"))


class JsonErrorWorker(ThreadWorker):
    def init_process(self):
        util.write_error = write_json_error  # this worker process only
        super().init_process()
