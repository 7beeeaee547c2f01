"""/api/profile/...: the signed-in user's own profile."""

from flask import Blueprint, request

from lib.auth import require_caller
from lib.http import json_text
from lib.validation import json_object
from services import update_profile

bp = Blueprint("profile", __name__, url_prefix="/api/profile")


@bp.route("/update", methods=["PUT", "POST"])  # the frontend's form sends PUT; POST as the course's API took
def update():
    caller = require_caller()
    return json_text(update_profile.run(caller, json_object(request)))
