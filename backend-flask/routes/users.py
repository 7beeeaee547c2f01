"""/api/users/...: the short form of a user."""

from flask import Blueprint

from lib.http import json_text
from lib.validation import handle_param
from services import user_short

bp = Blueprint("users", __name__, url_prefix="/api/users")


@bp.get("/@<handle>/short")
def short(handle: str):
    return json_text(user_short.run(handle_param(handle)))
