"""Health and version: the one route that needs no token."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

router = APIRouter(tags=["meta"])


class Health(BaseModel):
    status: str
    version: str


@router.get("/health", response_model=Health, summary="Liveness; needs no token")
def health() -> Health:
    from assay import __version__

    return Health(status="ok", version=__version__)
