"""Reading request input: JSON bodies, trimmed text fields (messages, display names, bios), uuids,
handles. Every problem is a 4xx ApiError."""

from __future__ import annotations

import json
import unicodedata
import uuid

from flask import Request

from lib.errors import ApiError

MAX_MESSAGE_CHARS = 280
MAX_HANDLE_CHARS = 256


def json_object(request: Request) -> dict:
    """The request body as a JSON object: 415 when it is not JSON, 400 when malformed."""
    if request.mimetype != "application/json":
        raise ApiError(415, "content_type_unsupported")
    try:
        body = json.loads(request.get_data(cache=False).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "body_invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(400, "body_not_object")
    return body


def text_field(body: dict, field: str, errors: list[str], max_chars: int, required: bool = True) -> str:
    """The trimmed text of body[field] ("" when absent, null or blank), adding its problems to
    `errors` as <field>_invalid (not a string), _blank (when required), _exceed_max_chars,
    _invalid_characters."""
    value = body.get(field)
    if value is not None and not isinstance(value, str):
        errors.append(f"{field}_invalid")
        return ""
    text = (value or "").strip()
    if not text:
        if required:
            errors.append(f"{field}_blank")
    elif len(text) > max_chars:
        errors.append(f"{field}_exceed_max_chars")
    elif not is_storable_text(text):
        errors.append(f"{field}_invalid_characters")
    return text


def message(body: dict, errors: list[str]) -> str:
    """The trimmed message, adding its problems to `errors`."""
    return text_field(body, "message", errors, MAX_MESSAGE_CHARS)


def is_storable_text(text: str) -> bool:
    """No NUL or other control characters (but newline and tab), no lone surrogates."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text)


def uuid_param(value: str) -> str:
    """A uuid from the path in its canonical form; 400 when malformed."""
    try:
        if len(value) != 36:
            raise ValueError
        return str(uuid.UUID(value))
    except ValueError:
        raise ApiError(400, "uuid_invalid") from None


def handle_param(value: str) -> str:
    """A handle from the path; one that cannot exist is simply not found."""
    if not value or len(value) > MAX_HANDLE_CHARS or not is_storable_text(value):
        raise ApiError(404, "user_not_found")
    return value
