"""Dashboard sign-in: the agent token in a cookie, and CSRF tokens for every form.

The token a person pastes at ``/ui/login`` is kept in the ``ordinaut_session`` cookie:
HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it), Secure when
the dashboard is served over HTTPS, path ``/ui``. Each request authenticates it exactly as
the API authenticates a bearer token, so the dashboard shows what that token may see.

Forms carry a CSRF token: for a signed-in person an HMAC of their session token (a page on
another site can neither read the cookie nor compute it); for the sign-in form itself a
random value also set in a short-lived cookie (double submit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request, Response

SESSION = "ordinaut_session"
LOGIN_CSRF = "ordinaut_login_csrf"
PATH = "/ui"
SESSION_SECONDS = 12 * 3600


def session_token(request: Request) -> str | None:
    """The token of the signed-in person, if any (not yet checked)."""
    return request.cookies.get(SESSION) or None


def csrf_for(token: str) -> str:
    """The CSRF token of a session: an HMAC of its token."""
    return hmac.new(token.encode(), b"ordinaut-ui-csrf", hashlib.sha256).hexdigest()


def csrf_ok(token: str, given: str | None) -> bool:
    """Whether a form's CSRF field belongs to this session."""
    return given is not None and hmac.compare_digest(csrf_for(token), given)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def start(response: Response, request: Request, token: str) -> None:
    """Keep ``token`` as the session; drop the sign-in form's CSRF cookie."""
    response.set_cookie(
        SESSION,
        token,
        max_age=SESSION_SECONDS,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(LOGIN_CSRF, path=PATH)


def end(response: Response) -> None:
    """Forget the session."""
    response.delete_cookie(SESSION, path=PATH)


def new_login_csrf() -> str:
    """A fresh random CSRF value for the sign-in form."""
    return secrets.token_urlsafe(24)


def set_login_csrf(request: Request, response: Response, value: str) -> None:
    """Set the sign-in form's CSRF value as a cookie to compare the form against."""
    response.set_cookie(
        LOGIN_CSRF,
        value,
        max_age=3600,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def login_csrf_ok(request: Request, given: str | None) -> bool:
    """Whether the sign-in form's CSRF field matches its cookie."""
    cookie = request.cookies.get(LOGIN_CSRF)
    return bool(cookie and given) and hmac.compare_digest(cookie or "", given or "")
