"""GitHub App authentication as the routes check it: the app's JWT, installation tokens, and
which repositories a token reaches (401 for a bad credential, 404 for a repository out of reach)."""

from __future__ import annotations

import jwt
from fastapi import Request

from tests.support.fake_github.state import GitHubError, Repo, State, Token
from tests.support.git_http import token_from_authorization


def verify_app_jwt(fake: State, request: Request) -> None:
    """RS256 JWT signed by the app's key: issuer == app id, at most 10 minutes, not expired."""
    token = token_from_authorization(request.headers.get("authorization"))
    if not token or token.startswith("ghs_"):
        raise GitHubError(401, "A JSON web token could not be decoded")
    try:
        claims = jwt.decode(token, fake.public_key_pem, algorithms=["RS256"],
                            options={"require": ["exp", "iat", "iss"],
                                     "verify_iss": False}, leeway=30)
    except jwt.ExpiredSignatureError:
        raise GitHubError(401, "'Expiration time' claim ('exp') must be a numeric value "
                               "representing the future time at which the assertion "
                               "expires") from None
    except jwt.PyJWTError:
        raise GitHubError(401, "A JSON web token could not be decoded") from None
    if str(claims.get("iss")) != str(fake.app_id):
        raise GitHubError(401, "'Issuer' claim ('iss') must be an Integer")
    if int(claims["exp"]) - int(claims["iat"]) > 600 + 60:
        raise GitHubError(401, "'Expiration time' claim ('exp') is too far in the future")


def installation_token(fake: State, request: Request) -> Token:
    """The issued, unexpired installation token of the request (401 otherwise)."""
    t = fake.valid_token(token_from_authorization(request.headers.get("authorization")))
    if t is None:
        raise GitHubError(401, "Bad credentials")
    return t


def repo_for(fake: State, request: Request, owner: str, name: str) -> tuple[Repo, Token]:
    """Repository ``owner/name`` if the request's token reaches it (404 like GitHub if not)."""
    t = installation_token(fake, request)
    full = f"{owner}/{name}"
    r = fake.repos.get(full)
    if r is None or r.installation_id != t.installation_id:
        raise GitHubError(404, "Not Found")
    if t.repositories is not None and full not in t.repositories:
        raise GitHubError(404, "Not Found")
    return r, t
