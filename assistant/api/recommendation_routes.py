"""Click-through of recommendation cards (assistant/recommend/links.py): record the click, go to the item's page."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse

from assistant.api.errors import APIError
from assistant.conversation import RecommendationFeedbackError
from assistant.recommend.links import verify_link

router = APIRouter(prefix="/api/recommendations", tags=["recommendations"])


@router.get("/open")
async def open_item(request: Request, t: str = Query(min_length=8, max_length=600)) -> RedirectResponse:
    """A card's link: 302 to the catalogue url of the item, after recording the click."""
    service = request.app.state.service
    link = verify_link(service.link_secret, t)
    if link is None:
        raise APIError(404, "this recommendation link was not made here", param="t")
    try:
        await service.recommendation_feedback(link.conversation_id, link.message_id, link.item_id, "click")
    except RecommendationFeedbackError as exc:
        raise APIError(404, str(exc), param="t") from exc
    items = await service.catalog_items([link.item_id])
    item = items.get(link.item_id)
    if item is None or not item.url.startswith(("https://", "http://")):
        raise APIError(404, "this item is no longer in the catalogue", param="t")
    return RedirectResponse(item.url, status_code=302)
