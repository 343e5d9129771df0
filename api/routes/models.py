"""``/models``: the reader versions (as ``docqa models`` lists them) and promotion (admin).

Promotion is :func:`reader_training.promote.promote_model`, the logic of ``docqa promote``: a
version that scores lower than the serving reader on the demo dev pairs is refused (409) unless
``force``. The new reader answers from the next question on, in every worker: each resolves
the serving reader (``serving.json``) per question.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from api.deps import AdminKey, AskKey, Context
from api.errors import ApiError
from api.schemas import ModelOut, PromoteRequest, PromoteResponse
from pipelines.models import is_model_folder, list_models, model_path, serving_name
from reader_training.promote import PromotionError, promote_model

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", summary="Reader versions, newest first; `serving` marks the one answering")
def models(ctx: Context, _: AskKey) -> list[ModelOut]:
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
    _: AdminKey,
    body: Annotated[PromoteRequest | None, Body()] = None,
) -> PromoteResponse:
    settings = ctx.settings
    try:
        path = model_path(settings, name)
    except ValueError as exc:
        raise ApiError(422, "invalid_model_name", str(exc)) from exc
    if not is_model_folder(path):
        raise ApiError(404, "unknown_model", f"{name}: no complete model folder at {path}")
    try:
        message = promote_model(settings, name, force=body.force if body else False)
    except PromotionError as exc:
        raise ApiError(409, "promotion_refused", str(exc)) from exc
    return PromoteResponse(
        message=message, serving=serving_name(settings), fixed_reader=settings.reader_model
    )
