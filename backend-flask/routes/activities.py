"""/api/activities/...: parse and validate the request, call a service, return its JSON."""

from flask import Blueprint, request

from lib.http import json_text
from lib.paging import next_link, parse_page
from services import home_activities

bp = Blueprint("activities", __name__, url_prefix="/api/activities")


@bp.get("/home")
def home():
    result = home_activities.run(parse_page(request))
    return json_text(result.body, headers=next_link(request, result.next_cursor))
