"""CORS for the frontend's origins only (FRONTEND_URL, BACKEND_URL).

The headers are worked out only for a request that carries an Origin: same-origin and
server-to-server calls pay nothing for CORS (docs/decisions/0011-cors-only-for-cross-origin-requests.md).
A preflight is Flask's automatic OPTIONS answer, which calls no view and so never touches the
database; its Access-Control-Max-Age lets a browser send one per URL every two hours instead of
one before each call (the frontend's Content-Type and Authorization make every call preflighted).
"""

from __future__ import annotations

from flask import Flask, Response, request

ALLOW_METHODS = "GET, POST, PUT, OPTIONS"
ALLOW_HEADERS = "Content-Type, Authorization"
EXPOSE_HEADERS = "Link"  # the next page's URL
MAX_AGE_SECONDS = "7200"  # the longest Chromium keeps a preflight's answer


def init_app(app: Flask) -> None:
    settings = app.config["SETTINGS"]
    origins = {url.rstrip("/") for url in (settings.frontend_url, settings.backend_url) if url}

    @app.after_request
    def cors_headers(response: Response) -> Response:
        origin = request.environ.get("HTTP_ORIGIN")
        if origin is None:
            return response
        response.headers.add("Vary", "Origin")  # the answer differs by origin: no cache may mix them
        if origin not in origins:
            return response
        headers = response.headers
        headers["Access-Control-Allow-Origin"] = origin
        if request.method == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in request.environ:
            headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
            headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
            headers["Access-Control-Max-Age"] = MAX_AGE_SECONDS
        else:
            headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        return response
