"""GET /api/health-check."""

from flask import Blueprint

from lib.http import json_text
from services import health_check

bp = Blueprint("health", __name__, url_prefix="/api")


@bp.get("/health-check")
def health():
    return json_text(health_check.run())
