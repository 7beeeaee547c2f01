"""/api/activities/...: parse and validate the request, call a service, return its JSON."""

from flask import Blueprint, request

from lib.auth import require_caller
from lib.http import json_text
from lib.paging import PageResult, next_link, parse_page
from lib.validation import handle_param, json_object, uuid_param
from services import (
    create_activity,
    create_reply,
    home_activities,
    notifications,
    search_activities,
    show_activity,
    user_activities,
)

bp = Blueprint("activities", __name__, url_prefix="/api/activities")


def paged(result: PageResult):
    return json_text(result.body, headers=next_link(request, result.next_cursor))


@bp.get("/home")
def home():
    return paged(home_activities.run(parse_page(request)))


@bp.post("")
def create():
    caller = require_caller()
    return json_text(create_activity.run(caller, json_object(request)))


@bp.post("/<activity_uuid>/reply")
def reply(activity_uuid: str):
    caller = require_caller()
    parent_uuid = uuid_param(activity_uuid)
    return json_text(create_reply.run(caller, parent_uuid, json_object(request)))


@bp.get("/@<handle>")
def user_feed(handle: str):
    return paged(user_activities.run(handle_param(handle), parse_page(request)))


@bp.get("/@<handle>/status/<activity_uuid>")
def show(handle: str, activity_uuid: str):
    activity_uuid = uuid_param(activity_uuid)
    page = parse_page(request, oldest_first=True)
    return paged(show_activity.run(handle_param(handle), activity_uuid, page))


@bp.get("/search")
def search():
    return paged(search_activities.run(request.args.get("term"), parse_page(request)))


@bp.get("/notifications")
def notifications_feed():
    caller = require_caller()
    return paged(notifications.run(caller, parse_page(request)))
