"""Bring a catalogue file and an interactions file into the store (what `assistant catalog ...` and the first
serve of the demo company run)."""

from __future__ import annotations

from pathlib import Path

from assistant.recommend.catalog import load_catalog
from assistant.recommend.interactions import InteractionDataError, InteractionSet, load_interactions
from assistant.store.catalog import CatalogIngestReport

DEMO_CATALOG = Path(__file__).resolve().parent.parent.parent / "data" / "catalog"
DEMO_CATALOG_FILE = DEMO_CATALOG / "lumen-catalog.csv"
DEMO_INTERACTIONS_FILE = DEMO_CATALOG / "interactions.csv"


def ingest_catalog(store, path: Path, prune: bool = False) -> CatalogIngestReport:
    """Store the file's items (all or nothing: a file with a bad row changes nothing)."""
    return store.catalog.upsert(load_catalog(Path(path)), prune=prune)


def import_interactions(store, path: Path, strict: bool = False) -> InteractionSet:
    """Store the file's interactions with catalogue items; rows naming unknown items are reported and skipped."""
    known = store.catalog.ids()
    if not known:
        raise InteractionDataError("the catalogue is empty: run `assistant catalog ingest FILE` first")
    found = load_interactions(Path(path), known, strict)
    found.stored = store.interactions.add_many(found.rows)
    return found


def prepare_demo(store, catalog_files: list[str] | None, interaction_files: list[str] | None) -> bool:
    """While the store has no catalogue item, ingest the configured files (default: the demo company's)."""
    if store.catalog.ids():
        return False
    catalogs = [Path(f).expanduser() for f in catalog_files] if catalog_files is not None else [DEMO_CATALOG_FILE]
    interactions = ([Path(f).expanduser() for f in interaction_files] if interaction_files is not None
                    else [DEMO_INTERACTIONS_FILE] if catalog_files is None else [])
    for path in catalogs:
        if path.is_file():
            ingest_catalog(store, path)
    if store.catalog.ids():
        for path in interactions:
            if path.is_file():
                import_interactions(store, path)
    return bool(store.catalog.ids())
