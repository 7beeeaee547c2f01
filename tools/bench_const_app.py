"""The HTTP-stack ceiling for bin/bench: a Flask app whose GET or POST /<name> answers a constant
body (the file <name> in BENCH_BODY_DIR, written by the bench before it asks for it) as JSON,
through the API's own response helper. Served by the same server, with the same settings and
worker start (serve.py's worker_app), as the API, it measures what the server and Flask cost
without the database."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, abort

from lib.http import json_text


def create_app() -> Flask:
    app = Flask(__name__)
    body_dir = Path(os.environ["BENCH_BODY_DIR"])
    bodies: dict[str, bytes] = {}  # each read on its first request (the bench warms it)

    @app.route("/<name>", methods=["GET", "POST"])
    def constant(name: str):
        if name not in bodies:
            path = body_dir / name
            if not path.is_file():
                abort(404)
            bodies[name] = path.read_bytes()
        return json_text(bodies[name])
    return app
