"""Error types of the three sandbox surfaces (API, OAuth, control) and their bodies."""

from __future__ import annotations

from typing import Any

from aiohttp import web

TITLES = {
    400: "Invalid Argument",
    401: "Unauthenticated",
    403: "Permission Denied",
    404: "Resource Not Found",
    405: "Method Not Allowed",
    409: "Already Exists",
    429: "Too Many Requests",
    500: "Internal Server Error",
}

DEFAULT_MESSAGES = {
    400: "The supplied parameters are invalid.",
    403: "You do not have permission to access this resource.",
    404: "The server could not find the requested resource.",
    405: "The requested method is not allowed.",
    429: "Rate limit exceeded.",
    500: "The server encountered an unexpected condition.",
}


class SandboxError(Exception):
    """Base class: an error that knows its HTTP response."""

    def response(self) -> web.Response:
        """Render the error as an HTTP response."""
        raise NotImplementedError


class ApiError(SandboxError):
    """A Calendly API error: {"title", "message", "details"?}."""

    def __init__(
        self, status: int, message: str | None = None, details: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message or DEFAULT_MESSAGES.get(status, "Error")
        self.details = details

    def response(self) -> web.Response:
        """Render the Calendly error body."""
        return calendly_error(self.status, self.message, self.details)


class OAuthError(SandboxError):
    """An OAuth error: {"error", "error_description"}."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def response(self) -> web.Response:
        """Render the OAuth error body."""
        body = {"error": self.error, "error_description": self.description}
        return web.json_response(body, status=self.status)


class ControlError(SandboxError):
    """A control API error: {"error", "details"}."""

    def __init__(self, status: int, error: str, details: Any = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.details = details

    def response(self) -> web.Response:
        """Render the control error body."""
        body = {"error": self.error, "details": self.details}
        return web.json_response(body, status=self.status)


def calendly_error(
    status: int, message: str | None = None, details: list[dict[str, str]] | None = None
) -> web.Response:
    """Build a Calendly-style error response."""
    body: dict[str, Any] = {
        "title": TITLES.get(status, "Error"),
        "message": message or DEFAULT_MESSAGES.get(status, "Error"),
    }
    if details:
        body["details"] = details
    return web.json_response(body, status=status)


def invalid_argument(parameter: str, message: str) -> ApiError:
    """A 400 naming the offending parameter."""
    details = [{"parameter": parameter, "message": message}]
    return ApiError(400, "The supplied parameters are invalid.", details)


def not_found(message: str = "The server could not find the requested resource.") -> ApiError:
    """A 404 Resource Not Found."""
    return ApiError(404, message)


def forbidden(message: str = "You do not have permission to access this resource.") -> ApiError:
    """A 403 Permission Denied."""
    return ApiError(403, message)
