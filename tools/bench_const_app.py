"""The HTTP-stack ceiling for bin/bench: a Flask app whose GET or POST /<name> answers a constant
body (the file <name> in BENCH_BODY_DIR) as JSON, through the API's own response helper. Served by
the same server, with the same settings, as the API (serve.py), it measures what the server and
Flask cost without the database."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, abort

from app import freeze_long_lived_objects
from lib.http import json_text


def create_app() -> Flask:
    app = Flask(__name__)
    bodies = {path.name: path.read_bytes() for path in Path(os.environ["BENCH_BODY_DIR"]).iterdir()}

    @app.route("/<name>", methods=["GET", "POST"])
    def constant(name: str):
        if name not in bodies:
            abort(404)
        return json_text(bodies[name])

    freeze_long_lived_objects()  # as the API's workers do
    return app
