"""Dependencies that routes name in their signatures: the app's settings and a database session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from core.config import Settings
from core.db.session import session_scope


def get_settings(request: Request) -> Settings:
    """The app's settings, with App credentials that setup stored since it started."""
    settings = request.app.state.settings.current()
    request.app.state.settings = settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    with session_scope(settings.database_url) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
