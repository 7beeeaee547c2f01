"""The Cruddur API: create_app() builds it; serve.py serves it (granian, one app per worker)."""

from __future__ import annotations

import logging
import os

from flask import Flask

from lib import auth, cors, errors
from lib.db import db
from lib.settings import Settings
from routes import activities, health, openapi, profile, users

MAX_BODY_BYTES = 16 * 1024


def create_app(test_config: dict | None = None) -> Flask:
    """The app, its settings from the environment (lib/settings.py); `test_config` overrides
    variables of the environment by name, e.g. {"DB_POOL_SIZE": 4}."""
    app = Flask(__name__)
    app.url_map.merge_slashes = False  # "//" is a 404 JSON error, not an HTML redirect
    app.config["SETTINGS"] = Settings.from_env({**os.environ, **(test_config or {})})
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    errors.init_app(app)
    db.init_app(app)
    auth.init_app(app)
    cors.init_app(app)

    app.register_blueprint(health.bp)
    app.register_blueprint(activities.bp)
    app.register_blueprint(users.bp)
    app.register_blueprint(profile.bp)
    app.register_blueprint(openapi.bp)
    return app

