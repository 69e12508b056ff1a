"""Retrieval: loaders, chunking, embeddings, FAISS and lexical indexes, evaluation (see DESIGN.md)."""
