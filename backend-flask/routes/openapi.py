"""GET /api/openapi.yml: the API's contract, served as written."""

from pathlib import Path

from flask import Blueprint, Response

bp = Blueprint("openapi", __name__, url_prefix="/api")

SPEC = Path(__file__).resolve().parent.parent / "openapi.yml"


@bp.get("/openapi.yml")
def spec():
    return Response(SPEC.read_bytes(), mimetype="application/yaml")
