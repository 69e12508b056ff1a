"""SASRec (Kang & McAuley, 2018): a causal self-attention encoder over the customer's items in time order that
predicts the next one, trained with full-softmax cross-entropy over every item at every position (far stronger
than one sampled negative: Petrov & Macdonald, 2023), item embeddings tied to the output layer.

Defaults chosen on MovieLens-100K's validation items (the item before each customer's last), never the test ones:
bench/results/recommend-*.md lists the runs."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from assistant.recommend.base import SETTINGS_FILE, top_items, vocabulary, write_settings


@dataclass
class SASRecConfig:
    dim: int = 64
    layers: int = 2
    heads: int = 2
    max_len: int = 50  # the customer's latest items the model reads
    dropout: float = 0.2
    epochs: int = 200
    batch_size: int = 128
    learning_rate: float = 3e-3
    weight_decay: float = 0.0
    time_budget_s: float = 100.0  # training stops at the end of the epoch that passes it
    seed: int = 0


def _network(n_items: int, config: SASRecConfig):
    import torch
    from torch import nn

    class SASRec(nn.Module):
        def __init__(self):
            super().__init__()
            self.items = nn.Embedding(n_items + 1, config.dim, padding_idx=0)  # 0: padding
            self.positions = nn.Embedding(config.max_len, config.dim)
            self.dropout = nn.Dropout(config.dropout)
            layer = nn.TransformerEncoderLayer(config.dim, config.heads, config.dim * 2, config.dropout,
                                               activation="gelu", batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(config.dim)
            nn.init.normal_(self.items.weight, std=0.02)
            nn.init.normal_(self.positions.weight, std=0.02)

        def forward(self, sequences: torch.Tensor) -> torch.Tensor:
            """Hidden states (batch, length, dim) of left-padded item sequences."""
            length = sequences.shape[1]
            positions = torch.arange(length, device=sequences.device)
            x = self.items(sequences) * config.dim ** 0.5 + self.positions(positions)[None]
            causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=sequences.device), 1)
            hidden = self.encoder(self.dropout(x), mask=causal, src_key_padding_mask=sequences == 0, is_causal=True)
            return self.norm(hidden)

        def logits(self, hidden: torch.Tensor) -> torch.Tensor:
            return hidden @ self.items.weight[1:].T

    return SASRec()


class SASRecRecommender:
    name = "sasrec"

    def __init__(self, config: SASRecConfig | None = None):
        self.config = config or SASRecConfig()
        self.items: list[str] = []
        self.network = None
        self.epochs_run = 0

    def _encode_all(self, history: Sequence[str]) -> list[int]:
        index = self._index
        return [index[i] + 1 for i in history if i in index]

    def _encode(self, history: Sequence[str]) -> list[int]:
        return self._encode_all(history)[-self.config.max_len:]

    def fit(self, histories: dict[str, list[str]], progress: bool = False) -> None:
        import torch
        from tqdm import tqdm

        config = self.config
        torch.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        self.items = vocabulary(histories)
        self._index = {item: i for i, item in enumerate(self.items)}
        sequences = []  # a long history is cut into windows of max_len + 1 items: every item is a target once
        for customer in sorted(histories):
            encoded = self._encode_all(histories[customer])
            for end in range(len(encoded), 1, -config.max_len):
                sequences.append(encoded[max(0, end - config.max_len - 1):end])
        self.network = _network(len(self.items), config)
        optimiser = torch.optim.AdamW(self.network.parameters(), lr=config.learning_rate,
                                      weight_decay=config.weight_decay)
        started = time.perf_counter()
        bar = tqdm(range(config.epochs), desc="training SASRec", unit="epoch", disable=not progress)
        self.network.train()
        for epoch in bar:
            order = rng.permutation(len(sequences))
            total, count = 0.0, 0
            for start in range(0, len(order), config.batch_size):
                batch = [sequences[i] for i in order[start:start + config.batch_size]]
                width = max(len(s) for s in batch) - 1
                inputs = torch.zeros(len(batch), width, dtype=torch.long)
                targets = torch.full((len(batch), width), -100, dtype=torch.long)
                for row, seq in enumerate(batch):
                    inputs[row, width - len(seq) + 1:] = torch.tensor(seq[:-1])
                    targets[row, width - len(seq) + 1:] = torch.tensor(seq[1:]) - 1
                hidden = self.network(inputs)
                keep = targets >= 0
                loss = torch.nn.functional.cross_entropy(self.network.logits(hidden[keep]), targets[keep])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total, count = total + loss.item() * int(keep.sum()), count + int(keep.sum())
            self.epochs_run = epoch + 1
            bar.set_postfix(loss=f"{total / max(count, 1):.3f}")
            if time.perf_counter() - started > config.time_budget_s:
                break
        self.network.eval()

    def scores(self, history: Sequence[str]) -> np.ndarray:
        return self.batch_scores([history])[0]

    def batch_scores(self, histories: Sequence[Sequence[str]]) -> np.ndarray:
        """Scores for many customers in one pass (rows: histories; a history without known items scores all 0)."""
        import torch

        encoded = [self._encode(h) for h in histories]
        width = max([len(e) for e in encoded] + [1])
        inputs = torch.zeros(len(encoded), width, dtype=torch.long)
        for row, seq in enumerate(encoded):
            if seq:
                inputs[row, width - len(seq):] = torch.tensor(seq)
        with torch.inference_mode():
            scores = self.network.logits(self.network(inputs)[:, -1]).numpy()
        scores[[not e for e in encoded]] = 0.0
        return scores

    def recommend(self, history: Sequence[str], k: int = 10, exclude=None, allowed=None) -> list[tuple[str, float]]:
        return top_items(self, history, k, exclude, allowed)

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        write_settings(folder, "sasrec", {"config": asdict(self.config), "items": self.items,
                                          "epochs_run": self.epochs_run})
        save_file({k: v.contiguous() for k, v in self.network.state_dict().items()}, str(folder / "sasrec.safetensors"))

    @classmethod
    def load(cls, folder: Path) -> SASRecRecommender:
        from safetensors.torch import load_file

        saved = json.loads((folder / SETTINGS_FILE).read_text())
        model = cls(SASRecConfig(**saved["config"]))
        model.items, model.epochs_run = saved["items"], saved.get("epochs_run", 0)
        model._index = {item: i for i, item in enumerate(model.items)}
        model.network = _network(len(model.items), model.config)
        model.network.load_state_dict(load_file(str(folder / "sasrec.safetensors")))
        model.network.eval()
        return model
