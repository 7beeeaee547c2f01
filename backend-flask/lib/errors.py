"""JSON errors: every error the API returns is a JSON array of error codes, ["code", ...], the
shape the Cruddur frontend reads and translates."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# The codes the frontend translates for "sign in again" and "something went wrong": a 401 lists
# generic_401 first, then what exactly was wrong; an unexpected failure is generic_500.
GENERIC_401 = "generic_401"
GENERIC_500 = "generic_500"


class ApiError(Exception):
    """An error the API answers with: an HTTP status and one or more error codes."""

    def __init__(self, status: int, *codes: str, headers: dict | None = None):
        super().__init__(", ".join(codes))
        self.status = status
        self.codes = list(codes)
        self.headers = headers or {}


def error_response(status: int, codes: list[str], headers: dict | None = None):
    if status == 401 and codes[:1] != [GENERIC_401]:
        codes = [GENERIC_401, *codes]
    response = jsonify(codes)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def http_code(exc: HTTPException) -> str:
    """werkzeug's name as a code: 'Method Not Allowed' -> 'method_not_allowed'."""
    if exc.code == 500:
        return GENERIC_500
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


def init_app(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def handle_api_error(exc: ApiError):
        return error_response(exc.status, exc.codes, exc.headers)

    @app.errorhandler(HTTPException)
    def handle_http_exception(exc: HTTPException):
        response = error_response(exc.code or 500, [http_code(exc)])
        for name, value in exc.get_headers():
            if name.lower() != "content-type":  # e.g. Allow on a 405
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, [GENERIC_500])
