"""A tiny sentence-transformers encoder (random BERT, WordPiece vocabulary written here): no downloads."""

from __future__ import annotations

from pathlib import Path


def build_tiny_encoder(folder: Path, extra_words: tuple[str, ...] = (), initializer_range: float = 0.02,
                       hidden_size: int = 32, dropout: float = 0.1) -> Path:
    """`initializer_range` 0.2, `hidden_size` 64, `dropout` 0: a body a cross-encoder learns on in a few steps
    (with the defaults a random [CLS] barely depends on the words)."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    base = folder / "bert"
    base.mkdir(parents=True, exist_ok=True)
    words = [*"refund card parcel shipping store security return money days the a to of".split(), *extra_words]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *[chr(c) for c in range(97, 123)]]
    BertTokenizerFast(vocab={word: i for i, word in enumerate(vocab)}).save_pretrained(base)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=hidden_size, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=2 * hidden_size, max_position_embeddings=128,
                         initializer_range=initializer_range, hidden_dropout_prob=dropout,
                         attention_probs_dropout_prob=dropout)).save_pretrained(base)
    transformer = models.Transformer(str(base), max_seq_length=64)
    pooling = models.Pooling(transformer.get_embedding_dimension(), "mean")
    encoder = SentenceTransformer(modules=[transformer, pooling], device="cpu")
    encoder.save(str(folder / "encoder"))
    return folder / "encoder"
