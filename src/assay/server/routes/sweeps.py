"""Sweeps: list them, read one with its trials."""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter

from assay.server.deps import READ, WS
from assay.server.schemas import ERRORS, Limit, Page, page_of
from assay.sweeps.entities import Sweep

router = APIRouter(prefix="/sweeps", tags=["sweeps"], responses=ERRORS, dependencies=READ)


@router.get("", response_model=Page[Sweep], summary="Sweeps, newest first (trials left out)")
def list_sweeps(ws: WS, limit: Limit = 100, page_token: str | None = None) -> Page[Sweep]:
    return page_of([replace(s, trial_list=()) for s in ws.sweeps.sweeps()], limit, page_token)


@router.get("/{name}", response_model=Sweep, summary="A sweep and every trial")
def get_sweep(name: str, ws: WS) -> Sweep:
    return ws.sweeps.get(name)
