"""The knowledge base: passages with their dense and lexical indexes, ingested incrementally, searched hybrid.

On disk (a folder of our own format, no pickle): `manifest.json` (encoder, index type, files and their
passages), `passages.jsonl`, `vectors.npy`, `dense.faiss`, `lexical/`. Updates are written to a staging folder
and swapped in, so a crash never leaves a half-written index.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retrieval.chunking import chunk_document, normalized
from retrieval.config import IndexSettings
from retrieval.dense import DenseIndex
from retrieval.documents import Passage
from retrieval.errors import RetrievalError
from retrieval.fusion import reciprocal_rank_fusion
from retrieval.lexical import LexicalIndex, tokenize
from retrieval.loaders import SkippedFile, discover, load_file

FORMAT_VERSION = 1


class KnowledgeBaseError(RetrievalError, RuntimeError):
    """The index on disk cannot be read or written; the message says where and how to fix it."""


class IndexMismatchError(RetrievalError, RuntimeError):
    """The index on disk was built with another encoder than the one configured."""


@dataclass
class Hit:
    passage: Passage
    score: float  # fused (or reranked) score: orders the hits
    dense_score: float  # cosine similarity to the query
    lexical_score: float  # BM25 (0 when the passage had no query word)
    relevance: float  # 0..1, max(cosine, IDF-weighted share of query words present): gates "don't know"

    def as_dict(self) -> dict:
        return {**self.passage.as_dict(), "score": round(self.score, 6), "dense_score": round(self.dense_score, 4),
                "lexical_score": round(self.lexical_score, 4), "relevance": round(self.relevance, 4)}


def proper_names(question: str) -> list[str]:
    """The capitalised words inside a question's sentences (Switzerland, PayPal, DHL), stemmed as BM25 sees them;
    a sentence's first word and "I" are not names."""
    names, sentence_start = [], True
    for word in re.findall(r"[\w'-]+|[.!?]", question):
        if word in ".!?":
            sentence_start = True
            continue
        if not sentence_start and word[0].isupper() and word != "I":
            names.extend(tokenize(word))
        sentence_start = False
    return names


def near_ties_ordered(hits: list[Hit], margin: float, names_in: dict[int, int]) -> list[Hit]:
    """Hits whose fused scores lie within `margin` (a share) of the first of their run are one rank step apart at
    most, which the fusion cannot tell from noise: within such a run the passage naming more of the question's
    proper names (`names_in`: id of the hit -> count) goes first, then the more relevant one. Runs keep their
    order."""
    def best_first(run: list[Hit]) -> list[Hit]:
        return sorted(run, key=lambda h: (names_in.get(id(h), 0), h.relevance, h.dense_score), reverse=True)

    ordered, run = [], []
    for hit in hits:
        if run and hit.score < run[0].score * (1 - margin):
            ordered += best_first(run)
            run = []
        run.append(hit)
    return ordered + best_first(run)


@dataclass
class IngestReport:
    files_seen: int = 0
    files_added: int = 0
    files_changed: int = 0
    files_unchanged: int = 0
    files_deleted: int = 0
    passages_added: int = 0
    passages_removed: int = 0
    passages_total: int = 0
    duplicates: int = 0
    encoded: int = 0
    seconds: float = 0.0
    index_type: str = "flat"
    rebuilt_for_encoder: bool = False
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class KnowledgeBase:
    def __init__(self, folder: Path, config: IndexSettings | None = None):
        self.folder = Path(folder)
        self.config = config or IndexSettings()
        self.manifest: dict = {"version": FORMAT_VERSION, "files": {}, "size": 0}
        self.passages: list[Passage] = []
        self.vectors = np.zeros((0, 0), dtype=np.float32)
        self.dense: DenseIndex | None = None
        self.lexical = LexicalIndex()
        self._encoder = None
        self._terms: dict[int, frozenset[str]] = {}  # passage row -> its BM25 terms (for relevance)
        self._loaded: tuple[int, int] | None = None  # the manifest file read (or written) last: mtime, size
        self._load()

    # ---- persistence -------------------------------------------------------------------------------------
    @property
    def _current(self) -> Path:
        return self.folder / "current"

    def _load(self) -> None:
        old, staging = self.folder / ".old", self.folder / ".next"
        if not self._current.exists() and (old / "manifest.json").exists():
            os.replace(old, self._current)  # a swap was interrupted: the previous index is intact
        shutil.rmtree(staging, ignore_errors=True)
        manifest_path = self._current / "manifest.json"
        if not manifest_path.exists():
            return
        try:
            self._loaded = self._on_disk()
            self.manifest = json.loads(manifest_path.read_text())
            with (self._current / "passages.jsonl").open(encoding="utf-8") as handle:
                self.passages = [Passage(**json.loads(line)) for line in handle]
            self.vectors = np.load(self._current / "vectors.npy", allow_pickle=False)
            self.dense = DenseIndex.load(self._current / "dense.faiss", self.manifest["index_type"])
            self.lexical = LexicalIndex.load(self._current / "lexical", len(self.passages))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise KnowledgeBaseError(f"the knowledge base in {self._current} cannot be read ({exc}); "
                               "run `assistant ingest --rebuild PATH...` to rebuild it") from exc

    def _save(self) -> None:
        """Write the index to a staging folder, then swap it in; on failure the previous index stays as it was."""
        try:
            self._write_and_swap()
        except OSError as exc:
            shutil.rmtree(self.folder / ".next", ignore_errors=True)
            raise KnowledgeBaseError(f"cannot write the knowledge base in {self.folder} ({exc.strerror or exc}): "
                                     "check that the folder is writable and the disk not full; the previous "
                                     "index is unchanged") from exc

    def _write_and_swap(self) -> None:
        staging = self.folder / ".next"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        with (staging / "passages.jsonl").open("w", encoding="utf-8") as handle:
            for passage in self.passages:
                handle.write(json.dumps(passage.as_dict(), ensure_ascii=False) + "\n")
        np.save(staging / "vectors.npy", self.vectors, allow_pickle=False)
        self.dense.save(staging / "dense.faiss")
        self.lexical.save(staging / "lexical")
        (staging / "manifest.json").write_text(json.dumps(self.manifest, indent=1, ensure_ascii=False))
        old = self.folder / ".old"
        shutil.rmtree(old, ignore_errors=True)
        if self._current.exists():
            os.replace(self._current, old)
        os.replace(staging, self._current)
        shutil.rmtree(old, ignore_errors=True)
        self._loaded = self._on_disk()

    def _on_disk(self) -> tuple[int, int] | None:
        try:
            found = (self._current / "manifest.json").stat()
        except OSError:
            return None
        return found.st_mtime_ns, found.st_size

    def changed_on_disk(self) -> bool:
        """Whether another process (`assistant ingest` while serving) swapped in another index since this one was
        read or written."""
        return self._on_disk() != self._loaded

    def holds_files_under(self, paths: list[Path]) -> bool:
        """Whether any file this index was built from lies under one of `paths` (they are its sources)."""
        roots = [Path(p).resolve() for p in paths]
        return any(Path(key).is_relative_to(root) for key in self.manifest.get("files", {}) for root in roots)

    # ---- models -----------------------------------------------------------------------------------------
    @property
    def encoder(self):
        if self._encoder is None:
            from retrieval.embeddings import load_encoder

            self._encoder = load_encoder(self.config.encoder)
        return self._encoder

    @property
    def reranker(self):
        """The reranker the settings name (loaded once per folder), or None."""
        if not self.config.reranker:
            return None
        from retrieval.rerank import load_reranker

        return load_reranker(self.config.reranker)

    def __len__(self) -> int:
        return len(self.passages)

    def check_encoder(self) -> None:
        """Refuse to search with another encoder than the one the index was built with."""
        built_with = self.manifest.get("encoder_id")
        if built_with and self.passages:
            from retrieval.embeddings import encoder_id

            configured = encoder_id(self.config.encoder)
            if configured != built_with:
                raise IndexMismatchError(
                    f"the knowledge base in {self.folder} was built with encoder '{built_with}' but "
                    f"'{configured}' is configured: run `assistant ingest --rebuild PATH...` or configure "
                    f"the original encoder")

    # ---- ingestion --------------------------------------------------------------------------------------
    def ingest(self, paths: list[Path], rebuild: bool = False, progress: bool = True) -> IngestReport:
        """Add, update and remove passages so the index matches the files under `paths`."""
        from tqdm import tqdm

        from retrieval.embeddings import encoder_id

        started = time.perf_counter()
        report = IngestReport()
        roots = [Path(p).resolve() for p in paths]
        found = list(discover(roots))
        report.files_seen = len(found)
        files: dict = dict(self.manifest.get("files", {}))
        configured_id = encoder_id(self.config.encoder)
        if self.manifest.get("encoder_id") not in (None, configured_id) and self.passages:
            rebuild = report.rebuilt_for_encoder = True  # another encoder: every vector must be recomputed
        by_id = {p.id: i for i, p in enumerate(self.passages)}
        replaced: dict[str, list[Passage]] = {}  # file -> its new passages
        seen: set[str] = set()
        for file, root in tqdm(found, desc="reading", unit="file", disable=not progress):
            key = str(file)
            seen.add(key)
            digest = _sha256(file)
            previous = files.get(key)
            if previous and previous["sha256"] == digest and not rebuild:
                report.files_unchanged += 1
                continue
            display = str(file.relative_to(root.parent))
            try:
                docs = load_file(file, display)
            except (SkippedFile, OSError) as exc:
                report.skipped.append((display, str(exc)))
                continue  # an unusable new version keeps the passages of the old one
            passages = [p for doc in docs for p in chunk_document(doc, self.config.chunk_chars,
                                                                    self.config.chunk_overlap_chars)]
            replaced[key] = passages
            files[key] = {"sha256": digest, "source": display}  # its passage ids are set after de-duplication
            if previous:
                report.files_changed += 1
            else:
                report.files_added += 1
        deleted = [key for key in files if key not in seen and any(Path(key).is_relative_to(r) for r in roots)]
        for key in deleted:
            del files[key]
        report.files_deleted = len(deleted)

        # keep the passages of files left alone, then add the new ones (deduplicated by normalised text)
        dropped = set(replaced) | set(deleted)
        old_files = self.manifest.get("files", {})
        dropped_ids = {pid for key in dropped for pid in old_files.get(key, {}).get("passages", [])}
        kept = [p for p in self.passages if p.id not in dropped_ids]
        texts = {normalized(p.text) for p in kept}
        new: list[Passage] = []
        for key, passages in replaced.items():
            unique = []
            for passage in passages:
                text = normalized(passage.text)
                if text in texts:
                    report.duplicates += 1
                    continue
                texts.add(text)
                unique.append(passage)
            files[key]["passages"] = [p.id for p in unique]
            new.extend(unique)
        report.passages_removed = len(self.passages) - len(kept)
        report.passages_added = len(new)
        all_passages = kept + new
        if not replaced and not deleted and not rebuild and self.dense is not None:
            report.passages_total = len(self.passages)
            report.index_type = self.manifest.get("index_type", "flat")
            report.seconds = time.perf_counter() - started
            return report  # nothing changed: nothing to encode or write

        reuse = [None] * len(all_passages) if rebuild else [by_id.get(p.id) for p in all_passages]
        report.encoded = self._commit(all_passages, reuse, files, configured_id, progress)
        report.passages_total = len(all_passages)
        report.index_type = self.dense.kind
        report.seconds = time.perf_counter() - started
        return report

    def reencode(self, progress: bool = True) -> int:
        """Encode every passage again with the configured encoder (another one was promoted); the files stay as
        ingested. Saved atomically: until it is done, the index on disk is the old one."""
        from retrieval.embeddings import encoder_id

        return self._commit(self.passages, [None] * len(self.passages), self.manifest.get("files", {}),
                            encoder_id(self.config.encoder), progress)

    def encoder_changed(self) -> bool:
        """The index was built with another encoder than the configured one."""
        from retrieval.embeddings import encoder_id

        built_with = self.manifest.get("encoder_id")
        return bool(built_with and self.passages and built_with != encoder_id(self.config.encoder))

    def replace_all(self, passages: list[Passage], progress: bool = True, vectors: np.ndarray | None = None) -> None:
        """Index exactly these passages (evaluation corpora, benchmarks): no files, no chunking.
        `vectors` (one row per passage, normalised) skips encoding."""
        from retrieval.embeddings import encoder_id

        if vectors is not None:
            self.vectors = vectors
            reuse = list(range(len(passages)))
        else:
            reuse = [None] * len(passages)
        self._commit(passages, reuse, {}, encoder_id(self.config.encoder), progress)

    def _commit(self, passages: list[Passage], reuse: list[int | None], files: dict, encoder: str,
                progress: bool) -> int:
        """Vectors (reused rows, the rest encoded), both indexes and the manifest; saved atomically."""
        vectors = np.zeros((len(passages), self.encoder.dim), dtype=np.float32)
        to_encode = [i for i, row in enumerate(reuse) if row is None]
        for i, row in enumerate(reuse):
            if row is not None:
                vectors[i] = self.vectors[row]
        # BM25 is built in a thread while the encoder runs (torch releases the GIL): ingestion costs little more
        # than encoding
        texts = [p.indexed_text() for p in passages]
        with ThreadPoolExecutor(max_workers=1) as pool:
            lexical = pool.submit(LexicalIndex.build, texts)
            if to_encode:
                vectors[to_encode] = self.encoder.encode([texts[i] for i in to_encode], progress=progress)
            self.lexical = lexical.result()
        self.passages, self.vectors, self._terms = passages, vectors, {}
        self.dense = DenseIndex.build(vectors, self.config.hnsw_threshold)
        self.manifest = {"version": FORMAT_VERSION, "encoder": self.config.encoder, "encoder_id": encoder,
                         "dim": self.encoder.dim, "index_type": self.dense.kind,
                         "hnsw_threshold": self.config.hnsw_threshold, "size": len(passages), "files": files,
                         "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self._save()
        return len(to_encode)

    # ---- search -----------------------------------------------------------------------------------------
    def search(self, query: str, k: int = 5) -> list[Hit]:
        """Hybrid search: dense (FAISS) and BM25 fused by reciprocal rank, reranked when a reranker is set."""
        if not self.passages or not query.strip():
            return []
        self.check_encoder()
        cfg = self.config
        vector = self.encoder.encode([query], kind="query")[0]
        # an English-only encoder says nothing about a Chinese query: lexical search alone decides then
        dense_useful = self.encoder.understands(query)
        dense_rows = self.dense.search(vector, cfg.candidates)[0] if dense_useful else np.empty(0, dtype=np.int64)
        lexical_rows, lexical_scores = self.lexical.search(query, cfg.candidates)
        fused = reciprocal_rank_fusion([dense_rows, lexical_rows], weights=[cfg.dense_weight, cfg.lexical_weight])
        pool = sorted(fused, key=fused.get, reverse=True)[: max(k, cfg.rerank_top if self.reranker else k)]
        bm25 = dict(zip(lexical_rows.tolist(), lexical_scores.tolist(), strict=True))
        terms, names = tokenize(query), set(proper_names(query))
        hits, names_in = [], {}
        for row in pool:
            passage = self.passages[row]
            cosine = float(self.vectors[row] @ vector) if dense_useful else 0.0
            if row not in self._terms:
                self._terms[row] = frozenset(tokenize(passage.indexed_text()))
            relevance = max(cosine, self.lexical.coverage(terms, self._terms[row]))
            hits.append(Hit(passage, fused[row], cosine, bm25.get(row, 0.0), relevance))
            names_in[id(hits[-1])] = len(names & self._terms[row])
        if self.reranker is not None and hits:
            scores = self.reranker.score(query, [h.passage.indexed_text() for h in hits])
            for hit, score in zip(hits, scores, strict=True):
                hit.score = float(score)
        # equal fused scores are common (first in one ranking and second in the other, or the reverse): the
        # passage that covers more of the question goes first
        hits.sort(key=lambda h: (round(h.score, 9), h.relevance, h.dense_score), reverse=True)
        if self.reranker is None and cfg.tie_margin > 0:
            hits = near_ties_ordered(hits, cfg.tie_margin, names_in)
        return hits[:k]
