"""A tiny sentence-transformers encoder (random BERT, WordPiece vocabulary written here): no downloads."""

from __future__ import annotations

from pathlib import Path


def build_tiny_encoder(folder: Path, extra_words: tuple[str, ...] = ()) -> Path:
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    base = folder / "bert"
    base.mkdir(parents=True, exist_ok=True)
    words = [*"refund card parcel shipping store security return money days the a to of".split(), *extra_words]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *[chr(c) for c in range(97, 123)]]
    BertTokenizerFast(vocab={word: i for i, word in enumerate(vocab)}).save_pretrained(base)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128)).save_pretrained(base)
    transformer = models.Transformer(str(base), max_seq_length=64)
    pooling = models.Pooling(transformer.get_embedding_dimension(), "mean")
    encoder = SentenceTransformer(modules=[transformer, pooling], device="cpu")
    encoder.save(str(folder / "encoder"))
    return folder / "encoder"
