"""Product cards of a recommendation answer, as the chat page (and so the widget, which frames it) shows them:
image, title, price, why; the title opens the item through our click-through link; "Not for me" dismisses it."""

from __future__ import annotations

import html

LABELS = {"en": {"open": "View", "dismiss": "Not for me", "dismissed": "Noted: we won't suggest it again.",
                 "heading": "Suggested for you"},
          "zh": {"open": "查看", "dismiss": "不适合我", "dismissed": "好的，以后不再推荐它。", "heading": "为您推荐"}}


def card_html(card: dict, lang: str = "en") -> str:
    """One card; every value escaped; the image only from http(s) (no data: or javascript: urls)."""
    def e(value) -> str:
        return html.escape(str(value or ""), quote=True)

    image = card.get("image") or ""
    picture = (f"<img src='{e(image)}' alt='' loading='lazy' referrerpolicy='no-referrer'>"
               if image.startswith(("https://", "http://")) else
               f"<div class='card-initial' aria-hidden='true'>{e((card.get('title') or '?')[:1])}</div>")
    price = f"{card['price']:.2f} {e(card.get('currency'))}" if card.get("price") is not None else ""
    return (f"<div class='rec-card' data-item='{e(card['id'])}'>{picture}<div class='rec-body'>"
            f"<a class='rec-title' href='{e(card['link'])}' target='_blank' rel='noopener'>{e(card['title'])}</a>"
            f"<div class='rec-price'>{price}</div><div class='rec-why'>{e(card.get('why'))}</div>"
            f"<a class='rec-open' href='{e(card['link'])}' target='_blank' rel='noopener'>"
            f"{LABELS[lang]['open']} ↗</a></div></div>")


CARD_CSS = """
.rec-card {display: flex; gap: 10px; align-items: flex-start; border: 1px solid #d0d7de; border-radius: 10px;
           padding: 8px; background: #fff;}
.rec-card img, .rec-card .card-initial {width: 64px; height: 64px; border-radius: 8px; object-fit: cover;
           flex: none; background: #eef2f6; display: grid; place-items: center; font-size: 28px; color: #57606a;}
.rec-title {font-weight: 600;}
.rec-price {color: #1a7f37; font-weight: 600;}
.rec-why {font-size: .85rem; color: #57606a;}
"""
