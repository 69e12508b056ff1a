"""The demo company's own order service: a small real HTTP API over its own SQLite file, seeded from
`data/orders/orders.json`, that the demo's actions (`data/orders/actions.yaml`) call.

It behaves like a shop's back office would: every request needs the service token; an order is found only for
its own customer (another customer's order is "not found", never shown); the address can change only while the
order is Received; a refund request is recorded once per Idempotency-Key.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel, Field

SEED = Path(__file__).resolve().parents[2] / "data" / "orders" / "orders.json"
DEMO_ACTIONS = SEED.parent / "actions.yaml"  # the demo company's actions over this service
SCHEMA = """
create table if not exists orders (order_id text primary key, customer_id text not null, body text not null);
create table if not exists refunds (id integer primary key autoincrement, order_id text not null,
    customer_id text not null, reason text not null, idempotency_key text unique, created_at text not null);
"""


class AddressChange(BaseModel):
    customer_id: str
    address: str = Field(min_length=8, max_length=200)


class RefundRequest(BaseModel):
    customer_id: str
    reason: str = Field(min_length=3, max_length=500)


def seeded(order: dict, today: date) -> dict:
    """A seed order with real dates: the seed says how many days ago it was placed and how long delivery takes, so
    the demo's orders are recent whenever it is first started."""
    placed = today - timedelta(days=order["placed_days_ago"])
    kept = {k: v for k, v in order.items() if k not in ("placed_days_ago", "delivery_days_after_placing")}
    return kept | {"placed_on": placed.isoformat(),
                   "delivery_date": (placed + timedelta(days=order["delivery_days_after_placing"])).isoformat()}


class OrderBook:
    """The orders in one SQLite file (created and seeded on first use)."""

    def __init__(self, path: Path, seed: Path = SEED):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.executescript(SCHEMA)
        if not self._db.execute("select count(*) from orders").fetchone()[0]:
            orders = [seeded(o, date.today()) for o in json.loads(seed.read_text(encoding="utf-8"))["orders"]]
            self._db.executemany("insert into orders values (?, ?, ?)",
                                 [(o["order_id"], o["customer_id"], json.dumps(o)) for o in orders])
            self._db.commit()

    def order(self, order_id: str, customer_id: str) -> dict:
        row = self._db.execute("select body from orders where order_id = ? and customer_id = ?",
                               (order_id, customer_id)).fetchone()
        if row is None:
            raise HTTPException(404, f"no order {order_id} for this customer")
        return json.loads(row[0])

    def orders(self, customer_id: str) -> list[dict]:
        rows = self._db.execute("select body from orders where customer_id = ? order by order_id",
                                (customer_id,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def change_address(self, order_id: str, change: AddressChange) -> dict:
        with self._lock:
            order = self.order(order_id, change.customer_id)
            if order["status"] != "Received":
                raise HTTPException(409, f"order {order_id} is {order['status']}: the address can only change "
                                         "while the order is Received")
            order["address"] = change.address
            self._db.execute("update orders set body = ? where order_id = ?", (json.dumps(order), order_id))
            self._db.commit()
            return order

    def request_refund(self, order_id: str, request: RefundRequest, key: str | None) -> dict:
        with self._lock:
            if key:
                done = self._db.execute("select id, order_id from refunds where idempotency_key = ?",
                                        (key,)).fetchone()
                if done is not None:
                    return {"refund_id": f"R{done[0]}", "order_id": done[1], "status": "requested", "repeat": True}
            order = self.order(order_id, request.customer_id)
            if order["status"] != "Delivered":
                raise HTTPException(409, f"order {order_id} is {order['status']}: a refund is requested after "
                                         "delivery")
            cursor = self._db.execute(
                "insert into refunds (order_id, customer_id, reason, idempotency_key, created_at) "
                "values (?, ?, ?, ?, ?)",
                (order_id, request.customer_id, request.reason, key, datetime.now(UTC).isoformat()))
            self._db.commit()
            return {"refund_id": f"R{cursor.lastrowid}", "order_id": order_id, "status": "requested",
                    "amount_eur": order["total_eur"]}

    def refunds(self, order_id: str) -> int:
        return self._db.execute("select count(*) from refunds where order_id = ?", (order_id,)).fetchone()[0]


def order_service_app(book: OrderBook, token: str) -> FastAPI:
    """The service's API; every route needs `Authorization: Bearer <token>`."""

    def authorised(authorization: str = Header(default="")) -> None:
        if not secrets.compare_digest(authorization, f"Bearer {token}"):
            raise HTTPException(401, "a valid service token is required")

    app = FastAPI(title="Lumen Outfitters orders (demo)", dependencies=[Depends(authorised)])

    @app.get("/orders", operation_id="list_orders", summary="List a customer's orders")
    def list_orders(customer_id: str) -> dict:
        return {"orders": [{k: o[k] for k in ("order_id", "status", "placed_on", "total_eur")}
                           for o in book.orders(customer_id)]}

    @app.get("/orders/{order_id}", operation_id="order_status",
             summary="Look up an order's status, carrier and expected delivery date")
    def get_order(order_id: str, customer_id: str) -> dict:
        return book.order(order_id, customer_id)

    @app.post("/orders/{order_id}/address", operation_id="change_delivery_address",
              summary="Change the delivery address of an order that has not been packed yet")
    def change_address(order_id: str, change: AddressChange) -> dict:
        return book.change_address(order_id, change)

    @app.post("/orders/{order_id}/refund", operation_id="request_refund",
              summary="Ask for a refund of a delivered order")
    def refund(order_id: str, request: RefundRequest,
               idempotency_key: str | None = Header(default=None)) -> dict:
        return book.request_refund(order_id, request, idempotency_key)

    return app


class OrderService:
    """The service on a free local port in a background thread (`with OrderService(path) as service:`), the way
    `assistant serve` runs it beside the demo company and the action benchmark calls it."""

    def __init__(self, path: Path, token: str | None = None):
        from assistant.api.background import BackgroundServer

        self.token = token or secrets.token_urlsafe(24)
        self.book = OrderBook(path)
        self._server = BackgroundServer(order_service_app(self.book, self.token), startup_timeout_s=30)
        self.url = self._server.url

    def environment(self) -> dict[str, str]:
        """What `data/orders/actions.yaml` reads from the environment to reach this service."""
        return {"ORDER_SERVICE_URL": self.url, "ORDER_SERVICE_TOKEN": self.token}

    def __enter__(self) -> OrderService:
        self._server.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._server.__exit__(*exc)
