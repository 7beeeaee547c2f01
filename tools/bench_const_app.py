"""The HTTP-stack ceiling for bin/bench: a Flask app whose every GET or POST answers one constant
body (the file BENCH_BODY_FILE names) as JSON, through the API's own response helper. Served by the
same server, with the same settings, as the API (serve.py), it measures what the server and Flask
cost without the database."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from lib.http import json_text


def create_app() -> Flask:
    app = Flask(__name__)
    body = Path(os.environ["BENCH_BODY_FILE"]).read_bytes()

    @app.route("/", methods=["GET", "POST"])
    def constant():
        return json_text(body)

    return app
