"""``/models``: the reader versions (as ``docqa models`` lists them; viewer) and promotion
(admin).

Promotion is :func:`reader_training.promote.promote_model`, the gate of ``docqa promote``: a
version that scores lower than the serving reader on the demo dev pairs is refused (409) unless
``force`` (which only an admin can send: promotion is an admin's action). The new reader
answers from the next question on, in every worker: each resolves the serving reader
(``serving.json``) per question. Every promotion, refused or not, is in the audit log.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from api.deps import Context, PromoteCaller, ReadCaller
from api.errors import ApiError
from api.schemas import ModelOut, PromoteRequest, PromoteResponse
from identity.roles import Action
from pipelines.reader_registry import is_model_folder, list_models, model_path, serving_name
from reader_training.promote import PromotionError, promote_model

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", summary="Reader versions, newest first; `serving` marks the one answering")
def models(ctx: Context, _: ReadCaller) -> list[ModelOut]:
    return [
        ModelOut(
            name=info.name,
            created=info.created,
            serving=info.serving,
            heldout_f1=info.heldout_f1,
            metrics=info.metrics,
        )
        for info in list_models(ctx.settings)
    ]


@router.post(
    "/{name}/promote",
    summary="Serve a reader version (refused if it scores lower, unless forced)",
    responses={
        404: {"description": "No complete model folder of that name."},
        409: {"description": "It scores lower than the serving reader."},
    },
)
def promote(
    name: str,
    ctx: Context,
    caller: PromoteCaller,
    body: Annotated[PromoteRequest | None, Body()] = None,
) -> PromoteResponse:
    settings = ctx.settings
    try:
        path = model_path(settings, name)
    except ValueError as exc:
        raise ApiError(422, "invalid_model_name", str(exc)) from exc
    if not is_model_folder(path):
        raise ApiError(404, "unknown_model", f"{name}: no complete model folder in the home")
    force = body.force if body else False
    try:
        message = promote_model(settings, name, force=force)
    except PromotionError as exc:
        ctx.audit.record(caller, Action.PROMOTE.value, "failed", target=name, detail=str(exc))
        raise ApiError(409, "promotion_refused", str(exc)) from exc
    ctx.audit.record(caller, Action.PROMOTE.value, target=name, detail=message)
    return PromoteResponse(
        message=message, serving=serving_name(settings), fixed_reader=settings.reader_model
    )
