"""Write the demo company's interaction history, `data/catalog/interactions.csv`, reproducibly (seeded).

The eight customers of the demo order service keep their real orders as purchases; 120 made-up shoppers follow
one of six habits (rain hiking, winter, trail running, camping, trekking, commuting) with some noise, so the
recommenders have something true to learn: who buys a rain jacket often buys overtrousers next.
Run: .venv/bin/python scripts/demo_interactions.py
"""

import csv
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"
HABITS = {
    "rain": ["LO-JK-01", "LO-TR-02", "LO-FW-01", "LO-SK-01", "LO-AC-03", "LO-BP-01"],
    "winter": ["LO-JK-05", "LO-AC-02", "LO-AC-03", "LO-BL-01", "LO-BL-02", "LO-FW-04"],
    "running": ["LO-FW-02", "LO-BL-03", "LO-SK-02", "LO-FL-02", "LO-JK-02", "LO-AC-01"],
    "camping": ["LO-CA-01", "LO-CA-02", "LO-CA-03", "LO-FW-04", "LO-JK-06", "LO-BP-02"],
    "trekking": ["LO-BP-02", "LO-AC-04", "LO-TR-03", "LO-FW-01", "LO-SK-01", "LO-FL-01"],
    "commuting": ["LO-JK-02", "LO-BP-03", "LO-JK-04", "LO-TR-01", "LO-AC-02", "LO-BL-03"],
}
START = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
ORDERS_DAY = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # the demo orders' "today"


def main() -> None:
    rng = random.Random(18)
    catalog = {row["title"]: row["id"] for row in csv.DictReader((DATA / "catalog" / "lumen-catalog.csv").open())}
    all_ids = list(catalog.values())
    rows = []
    for order in json.loads((DATA / "orders" / "orders.json").read_text())["orders"]:
        when = ORDERS_DAY - timedelta(days=order["placed_days_ago"])
        for n, item in enumerate(order["items"]):
            rows.append((order["customer_id"], catalog[item["name"]], "purchase", when + timedelta(minutes=n)))
    for n in range(1, 121):
        customer = f"shopper-{n:03d}"
        habit = HABITS[rng.choice(sorted(HABITS))]
        when = START + timedelta(days=rng.uniform(0, 20))
        length = rng.randint(2, len(habit))
        items = habit[:length]
        if rng.random() < 0.35:  # people are not only their habit
            items.insert(rng.randint(1, len(items)), rng.choice(all_ids))
        for item in dict.fromkeys(items):
            if rng.random() < 0.6:
                rows.append((customer, item, "view", when))
                when += timedelta(minutes=rng.randint(2, 90))
            rows.append((customer, item, "purchase", when))
            when += timedelta(days=rng.uniform(1, 12))
    rows = sorted(dict.fromkeys(rows), key=lambda r: (r[3], r[0]))  # one row per customer, item, kind and time
    with (DATA / "catalog" / "interactions.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["customer", "item", "kind", "time"])
        for customer, item, kind, when in rows:
            writer.writerow([customer, item, kind, when.strftime("%Y-%m-%dT%H:%M:%SZ")])
    print(f"{len(rows)} interactions written")


if __name__ == "__main__":
    main()
