"""The catalogue and interaction files, their import into the store, the catalogue search with its filters, and
what counts as a request for a recommendation."""

from __future__ import annotations

import pytest

from assistant.recommend.catalog import CatalogDataError, load_catalog
from assistant.recommend.catalog_index import CatalogFilter
from assistant.recommend.interactions import histories, load_interactions
from assistant.recommend.requests import recommendation_request

pytestmark = pytest.mark.usefixtures("database_url")

CATALOG = """id,title,category,price,available,attributes,description
J1,Storm rain jacket,Jackets,149,true,waterproof=yes; layers=3,Waterproof shell for hiking in the rain. 防水冲锋衣
J2,City down jacket,Jackets,199,yes,,Warm down jacket for cold city days. 羽绒服
S1,Trail runner shoes,Footwear,120,true,,Grippy shoes for fast trail runs. 越野跑鞋
S2,Rain boots,Footwear,60,out of stock,,Rubber boots for puddles. 雨靴
"""


@pytest.fixture
def store(make_settings):
    from assistant.store import Store

    store = Store(make_settings().settings.effective_database_url)
    yield store
    store.close()


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_catalog_rows_are_read_with_their_types(tmp_path):
    items = {i.id: i for i in load_catalog(write(tmp_path, "c.csv", CATALOG))}
    assert items["J1"].price == 149.0 and items["J1"].attributes == {"waterproof": "yes", "layers": "3"}
    assert items["J2"].available and not items["S2"].available
    jsonl = write(tmp_path, "c.jsonl", '{"id": "X", "title": "Beanie", "price": "29.50", '
                                      '"attributes": {"material": "merino"}}\n')
    (beanie,) = load_catalog(jsonl)
    assert beanie.price == 29.5 and beanie.attributes == {"material": "merino"} and beanie.currency == "EUR"


def test_a_bad_catalogue_names_every_bad_row_and_stores_nothing(tmp_path, store):
    from assistant.recommend.ingest import ingest_catalog

    bad = write(tmp_path, "bad.csv", "id,title,price\nA,Good,10\nA,Again,11\nB,,5\nC,Odd,ten euros\n")
    with pytest.raises(CatalogDataError) as caught:
        ingest_catalog(store, bad)
    message = str(caught.value)
    assert "bad.csv:3: id: 'A' is already used on line 2" in message
    assert "bad.csv:4: title: missing" in message
    assert "bad.csv:5: price: 'ten euros' is not a number" in message
    assert store.catalog.ids() == set()
    with pytest.raises(CatalogDataError, match="no items"):
        load_catalog(write(tmp_path, "empty.csv", "id,title\n"))
    with pytest.raises(CatalogDataError, match="unknown field"):
        load_catalog(write(tmp_path, "typo.csv", "id,title,prize\nA,Hat,3\n"))


def test_ingest_is_incremental_and_prune_removes_what_the_file_dropped(tmp_path, store):
    from assistant.recommend.ingest import ingest_catalog

    path = write(tmp_path, "c.csv", CATALOG)
    first = ingest_catalog(store, path)
    assert (first.added, first.updated, first.unchanged) == (4, 0, 0)
    changed = write(tmp_path, "c2.csv", CATALOG.replace("149", "139").replace("S2,Rain boots,Footwear,60,out of stock,,"
                                                                             "Rubber boots for puddles. 雨靴\n", ""))
    second = ingest_catalog(store, changed)
    assert (second.added, second.updated, second.unchanged, second.removed) == (0, 1, 2, 0)
    assert store.catalog.get(["J1"])["J1"].price == 139.0 and "S2" in store.catalog.ids()
    assert ingest_catalog(store, changed, prune=True).removed == 1
    assert store.catalog.ids() == {"J1", "J2", "S1"}


def test_interactions_skip_unknown_items_and_bad_rows_and_import_once(tmp_path, store):
    from assistant.recommend.ingest import import_interactions, ingest_catalog
    from assistant.recommend.interactions import InteractionDataError

    with pytest.raises(InteractionDataError, match="catalogue is empty"):
        import_interactions(store, write(tmp_path, "none.csv", "customer,item,kind,time\n"))
    ingest_catalog(store, write(tmp_path, "c.csv", CATALOG))
    path = write(tmp_path, "i.csv", "customer,item,kind,time,rating\n"
                                    "ann,J1,purchase,2026-10-01T10:00:00Z,\n"
                                    "ann,S1,view,1791000000,\n"
                                    "ann,NOPE,view,2026-10-02,\n"
                                    "bob,J2,like,2026-10-02,\n"
                                    "bob,J2,rating,2026-10-03,five\n")
    found = import_interactions(store, path)
    assert found.stored == 2
    assert [e.split(": ", 1)[1] for e in found.errors] == [
        "item 'NOPE' is not in the catalogue",
        "'kind' 'like' is not one of view, cart, purchase, rating, shown, click, dismiss",
        "'rating' 'five' is not a number"]
    assert found.errors[0].startswith(f"{path}:4")
    assert import_interactions(store, path).stored == 0  # the same file again adds nothing
    assert histories(store.interactions.all()) == {"ann": ["J1", "S1"]}
    with pytest.raises(InteractionDataError, match=r"i.csv:4: item 'NOPE'"):
        import_interactions(store, path, strict=True)


def test_histories_order_by_time_then_file_order_and_low_ratings_are_not_liked(tmp_path):
    rows = load_interactions(write(tmp_path, "i.jsonl", "\n".join([
        '{"customer": "c", "item": "B", "kind": "rating", "time": 100, "rating": 5}',
        '{"customer": "c", "item": "A", "kind": "rating", "time": 100, "rating": 4}',
        '{"customer": "c", "item": "Z", "kind": "rating", "time": 50, "rating": 1}',
        '{"customer": "c", "item": "D", "kind": "dismiss", "time": 200}',
        '{"customer": "c", "item": "A", "kind": "purchase", "time": 300}'])))
    assert histories(rows.rows) == {"c": ["B", "A"]}  # same second: the file's order; Z rated 1, D dismissed
    assert histories(rows.rows, positive_only=False) == {"c": ["Z", "B", "A", "D"]}


def test_catalogue_search_finds_english_and_chinese_and_keeps_to_the_filters(tmp_path):
    from assistant.recommend.catalog_index import CatalogIndex
    from retrieval.embeddings import load_encoder

    index = CatalogIndex(load_catalog(write(tmp_path, "c.csv", CATALOG)), load_encoder("default"),
                         cache=tmp_path / "vectors.npz")
    assert index.search("a jacket for hiking in the rain")[0].item.id == "J1"
    assert index.search("防水冲锋衣")[0].item.id == "J1"  # the English encoder is not used; BM25 with jieba is
    assert {h.item.id for h in index.search("jacket", where=CatalogFilter(max_price=160))} <= {"J1", "S1"}
    assert "S2" not in {h.item.id for h in index.search("rain boots")}  # out of stock
    assert index.search("rain boots", where=CatalogFilter(in_stock=False))[0].item.id == "S2"
    assert [h.item.id for h in index.search("shoes", where=CatalogFilter(category="footwear"))] == ["S1"]
    again = CatalogIndex(index.items, index.encoder, cache=tmp_path / "vectors.npz")  # vectors from the cache
    assert (again.vectors == index.vectors).all()


@pytest.mark.parametrize(("text", "expected"), [
    ("Can you recommend a jacket for hiking in the rain under 150 euros?", ("explicit", None, 150.0, "Jackets")),
    ("I'm looking for waterproof boots between 80 and 120 EUR", ("wish", 80.0, 120.0, None)),
    ("推荐一款500元以下的冲锋衣", ("explicit", None, 500.0, None)),
    ("有没有防水的鞋", ("wish", None, None, None)),
    ("What would you recommend for me?", ("explicit", None, None, None)),
    ("I'm looking for my order 1042", None),
    ("Where is my refund?", None),
    ("How do I return shoes?", None),
    ("我的快递到哪了", None),
])
def test_what_counts_as_a_request_for_a_recommendation(text, expected):
    found = recommendation_request(text, "invite", ["Jackets", "Footwear"])
    if expected is None:
        assert found is None
        return
    kind, low, high, category = expected
    assert (("explicit" if found.explicit else "wish"), found.where.min_price, found.where.max_price,
            found.where.category) == (kind, low, high, category)
    assert "150" not in found.query and "500" not in found.query  # the price is a filter, not words to match
    assert (recommendation_request(text, "ask") is None) == (kind == "wish")  # `ask` answers explicit asks only
    assert recommendation_request(text, "off") is None
