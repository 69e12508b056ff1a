"""Learned item-to-item transitions: what a customer takes next, from their latest few items.

score(j) = sum over the customer's last `recent` items i (newest first, age a) of w[a] * S[i, j]
         + mean over their last `taste_window` items i of P[i] . Q[j] + b[j]

The first term is what follows what: S starts as EASE's item weights (a closed-form ridge regression of each item
on the others; Steck 2019) or as the cosine co-occurrence, w as a recency decay. The second, off by default, is the
customer's longer-term taste (factored item similarity, as FISM); b is a popularity bias. All are learned with
full-softmax cross-entropy on every next item of every history (torch, AdamW, a sparse matmul per batch), keeping
the epoch that scores best on the customers' last training items (held out inside `fit`; the start counts, so
learning must beat the prior to be kept). A sequential model in the family of FPMC and SLIST. S is a full matrix:
meant for catalogues up to about 10,000 items (a larger one: SASRec).

On MovieLens-100K (`assistant eval recommend`, test items) it reaches NDCG@10 0.115 / HR@10 0.208 in about a
minute on 2 cores: 2.6x popularity, 2.0x whole-history item co-occurrence, 1.05x co-occurrence of the recent items
(1.07x on the validation items the settings were chosen on)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from assistant.recommend.base import SETTINGS_FILE, top_items, vocabulary, write_settings
from assistant.recommend.cooccurrence import CooccurrenceRecommender

MAX_ITEMS = 10_000


@dataclass
class TransitionConfig:
    prior: str = "ease"  # where S starts: "ease" or "cooccurrence"
    ease_l2: float = 1000.0
    recent: int = 10  # the customer's latest items that vote
    initial_decay: float = 0.7
    initial_scale: float = 10.0  # co-occurrence cosines are 0..1: logits need a wider range
    epochs: int = 40
    batch_size: int = 1024  # next-item predictions per step
    learning_rate: float = 0.0002
    weight_decay: float = 0.0  # of the learned change to co-occurrence: pulls S back towards it
    taste_dim: int = 0  # 0: no taste term (32 scored lower on MovieLens validation items)
    taste_window: int = 50
    taste_learning_rate: float = 0.01
    patience: int = 3  # epochs without improvement on the held-out last items before stopping
    time_budget_s: float = 100.0
    seed: int = 0


class TransitionRecommender:
    name = "transitions"

    def __init__(self, config: TransitionConfig | None = None):
        self.config = config or TransitionConfig()
        self.items: list[str] = []
        self.similarity = np.zeros((0, 0), dtype=np.float32)
        self.recency = np.zeros(0, dtype=np.float32)
        self.bias = np.zeros(0, dtype=np.float32)
        self.taste_in = np.zeros((0, 0), dtype=np.float32)
        self.taste_out = np.zeros((0, 0), dtype=np.float32)
        self.epochs_run = 0

    def _contexts(self, sequences: list[list[int]], pad: int) -> tuple[np.ndarray, np.ndarray]:
        """(contexts: the `recent` items before each target, newest first, padded; targets)."""
        width = self.width
        contexts, targets = [], []
        for seq in sequences:
            for t in range(1, len(seq)):
                window = seq[max(0, t - width):t][::-1]
                contexts.append(window + [pad] * (width - len(window)))
                targets.append(seq[t])
        return (np.array(contexts, dtype=np.int64).reshape(-1, width), np.array(targets, dtype=np.int64))

    @property
    def width(self) -> int:
        return max(self.config.recent, self.config.taste_window if self.config.taste_dim else 0)

    def _prior(self, histories: dict[str, list[str]], index: dict[str, int]) -> np.ndarray:
        """Where S starts: EASE's item-to-item weights (a ridge regression of each item on the others, closed form;
        Steck, 2019), scaled to at most 1, or the cosine co-occurrence."""
        n = len(index)
        if self.config.prior == "cooccurrence":
            prior = CooccurrenceRecommender()
            prior.fit(histories)
            order = [index[i] for i in prior.items]
            start = np.zeros((n, n), dtype=np.float32)
            start[np.ix_(order, order)] = prior.similarity
            return start
        matrix = np.zeros((len(histories), n), dtype=np.float64)
        for row, customer in enumerate(sorted(histories)):
            matrix[row, [index[i] for i in histories[customer]]] = 1.0
        gram = matrix.T @ matrix
        gram[np.diag_indices(n)] += self.config.ease_l2
        inverse = np.linalg.inv(gram)
        weights = inverse / -np.diag(inverse)
        weights[np.diag_indices(n)] = 0.0
        return (weights / max(float(np.abs(weights).max()), 1e-9)).astype(np.float32)

    def fit(self, histories: dict[str, list[str]], progress: bool = False) -> None:
        import torch
        from tqdm import tqdm

        config = self.config
        torch.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        self.items = vocabulary(histories)
        n = len(self.items)
        if n > MAX_ITEMS:
            raise ValueError(f"{n} items: the transition model keeps a full item-by-item matrix, meant for up to "
                             f"{MAX_ITEMS}; use SASRec")
        index = {item: i for i, item in enumerate(self.items)}
        start = self._prior(histories, index)
        sequences = [[index[i] for i in histories[c]] for c in sorted(histories)]
        train_ctx, train_y = self._contexts([s[:-1] if len(s) >= 3 else s for s in sequences], n)
        held_ctx = np.array([(s[:-1][::-1][:self.width] + [n] * self.width)[:self.width]
                             for s in sequences if len(s) >= 3], dtype=np.int64).reshape(-1, self.width)
        held_y = np.array([s[-1] for s in sequences if len(s) >= 3], dtype=np.int64)

        prior = torch.from_numpy(start)
        change = torch.nn.Parameter(torch.zeros(n, n))  # learned on top of the prior, decayed towards it
        recency = torch.nn.Parameter(torch.tensor([config.initial_scale * config.initial_decay ** a
                                                   for a in range(config.recent)], dtype=torch.float32))
        bias = torch.nn.Parameter(torch.zeros(n))
        taste_in = torch.nn.Parameter(torch.randn(n + 1, config.taste_dim) * 0.01)
        taste_out = torch.nn.Parameter(torch.randn(n, config.taste_dim) * 0.01)
        optimiser = torch.optim.AdamW([{"params": [change], "lr": config.learning_rate,
                                        "weight_decay": config.weight_decay},
                                       {"params": [recency, bias], "lr": config.learning_rate, "weight_decay": 0.0},
                                       {"params": [taste_in, taste_out], "lr": config.taste_learning_rate,
                                        "weight_decay": 0.0}])

        def logits(contexts: torch.Tensor) -> torch.Tensor:
            recent = contexts[:, :config.recent]
            # each context as a sparse row of recency weights over the items (padding left out): one sparse matmul
            present = recent < n
            rows = torch.arange(len(recent))[:, None].expand_as(recent)[present]
            weights = torch.sparse_coo_tensor(torch.stack([rows, recent[present]]),
                                              recency.expand(len(recent), -1)[present], (len(recent), n),
                                              check_invariants=False)
            scores = torch.sparse.mm(weights, prior + change) + bias
            if config.taste_dim:
                window = contexts[:, :config.taste_window]
                present = (window < n).float()
                taste = (taste_in[window] * present[..., None]).sum(1) / present.sum(1, keepdim=True).clamp(min=1)
                scores = scores + taste @ taste_out.T
            return scores

        def held_out_ndcg() -> float:
            with torch.no_grad():
                scores = logits(torch.from_numpy(held_ctx))
                seen = torch.from_numpy(held_ctx)
                scores = torch.cat([scores, torch.zeros(len(scores), 1)], 1).scatter_(1, seen, float("-inf"))[:, :n]
                target = scores.gather(1, torch.from_numpy(held_y)[:, None])
                rank = (scores > target).sum(1).numpy()
            return float(np.mean(np.where(rank < 10, 1 / np.log2(rank + 2), 0.0)))

        def state() -> tuple:
            return ((prior + change.detach()).clone(), recency.detach().clone(), bias.detach().clone(),
                    taste_in.detach()[:n].clone(), taste_out.detach().clone())

        best, best_state, waited = held_out_ndcg(), state(), 0  # the start counts: learning must beat it
        started = time.perf_counter()
        bar = tqdm(range(config.epochs), desc="training transitions", unit="epoch", disable=not progress)
        for epoch in bar:
            for batch in np.array_split(rng.permutation(len(train_y)), max(1, math.ceil(len(train_y)
                                                                                        / config.batch_size))):
                loss = torch.nn.functional.cross_entropy(logits(torch.from_numpy(train_ctx[batch])),
                                                         torch.from_numpy(train_y[batch]))
                optimiser.zero_grad()
                loss.backward()
                if taste_in.grad is not None:  # the padding row stays zero
                    taste_in.grad[n] = 0.0
                optimiser.step()
            score = held_out_ndcg()
            self.epochs_run = epoch + 1
            bar.set_postfix(held_out_ndcg=f"{score:.4f}", best=f"{best:.4f}")
            if score > best:
                best, best_state, waited = score, state(), 0
            else:
                waited += 1
            if waited >= config.patience or time.perf_counter() - started > config.time_budget_s:
                break
        self.similarity, self.recency, self.bias, self.taste_in, self.taste_out = (t.numpy() for t in best_state)
        self.held_out_ndcg = best

    def scores(self, history: Sequence[str]) -> np.ndarray:
        index = {item: i for i, item in enumerate(self.items)}
        known = [index[i] for i in history if i in index][::-1]
        if not known:
            return self.bias
        recent = known[:self.config.recent]
        scores = self.recency[:len(recent)] @ self.similarity[recent] + self.bias
        if self.config.taste_dim:
            scores = scores + self.taste_in[known[:self.config.taste_window]].mean(0) @ self.taste_out.T
        return scores

    def recommend(self, history: Sequence[str], k: int = 10, exclude=None, allowed=None) -> list[tuple[str, float]]:
        return top_items(self, history, k, exclude, allowed)

    def save(self, folder: Path) -> None:
        write_settings(folder, "transitions", {"config": asdict(self.config), "items": self.items,
                                               "epochs_run": self.epochs_run})
        np.savez(folder / "transitions.npz", similarity=self.similarity, recency=self.recency, bias=self.bias,
                 taste_in=self.taste_in, taste_out=self.taste_out)

    @classmethod
    def load(cls, folder: Path) -> TransitionRecommender:
        saved = json.loads((folder / SETTINGS_FILE).read_text())
        model = cls(TransitionConfig(**saved["config"]))
        model.items, model.epochs_run = saved["items"], saved.get("epochs_run", 0)
        with np.load(folder / "transitions.npz") as arrays:
            model.similarity, model.recency, model.bias = arrays["similarity"], arrays["recency"], arrays["bias"]
            model.taste_in, model.taste_out = arrays["taste_in"], arrays["taste_out"]
        return model
