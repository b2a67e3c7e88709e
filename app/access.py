"""Who may use which route. Every route of the app names one of these rules in its signature."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException

from app.deps import SettingsDep


def setup_allowed(settings: SettingsDep) -> None:
    """The setup page: only while no App is configured."""
    if settings.app_configured:
        raise HTTPException(404, "Not Found")


SetupAllowed = Annotated[None, Depends(setup_allowed)]
