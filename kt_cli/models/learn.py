"""LEARN's twin towers: a frozen LLM's item content embeddings aligned to preferences by a causal transformer.

The model never sees an item id: an item is its content embedding (a frozen LLM over its text, mean-pooled
and L2-normalised, kt embed --encoder llm:MODEL; LEARN's "CEX"), fixed and not trained. Preference alignment
("PAL"): ``Linear(d -> hidden)``, learned positions, a causal transformer, ``Linear(hidden -> d)``, L2 norm.
The user vector is the output at the last position of the user's time-ordered history of content
embeddings; the item vector is the same network on a one-item sequence (LEARN's best variant,
``item_tower: shared``) or a separate MLP (``item_tower: mlp``). Score = cosine x ``logit_scale`` (LEARN's
code: 20, i.e. temperature 0.05; ``learn_scale`` makes it a parameter).

Training is the paper's dense all-action objective: each user's training sequence is cut into chunks of
``max_history`` inputs (from its end backwards), and with the causal mask every position of a chunk predicts
the item that follows it, so each training interaction but a user's first is a target once per epoch, at a
fraction of the cost of one forward pass per target (RecBole's sequential augmentation). Loss
``contrastive``: a softmax over the distinct target items of the batch (other users' targets are the
negatives; a target equal to the row's own is the same column, so duplicates are never negatives);
``full``: a softmax over every item the training part shows, the user's other training items masked (the
optional fine-tune; the ``learn`` method switches to it in the fine-tune phase). ``softmax_items`` says which
items that softmax covers. ``trained`` (the default): the items some training history holds; the others (the
``cold-items`` split's new items, or items rated only late in a time split) are left out, as they are out of the
contrastive one: a new item is not in the catalogue when the model trains, and as an ever-losing negative it
would be learned away (with item profiles, LEARN ranked cold items near 0 that way). ``all``: every item of the
dataset, as ID models see it; it teaches the towers that an item nobody rated in training is unlikely, which
pays where such items are rare in the test part (the default split) and costs where they are the point (new
items). Which one fits a split is a question for validation (bench/learn.py asks it per split).
Batches are ``train_batch_size`` chunks, made by
:meth:`Learn.batches` rather than RecBole's interaction loader.

Histories and content are given after construction by the ``learn`` method (methods/learn.py), which reads
them from the store; the input projection is built then, at the content's width. At scoring time a user's
history is her training items (never validation or test ones, as for every kt model).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from recbole.data.interaction import Interaction
from recbole.model.abstract_recommender import GeneralRecommender
from recbole.utils import InputType
from torch import nn
from torch.nn import functional as F

ITEM_TOWERS = ("shared", "mlp")
SOFTMAX_ITEMS = ("trained", "all")


class Learn(GeneralRecommender):
    """Twin towers over frozen content embeddings (see the module docstring)."""

    input_type = InputType.POINTWISE

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.hidden = int(config["hidden_size"])
        self.max_history = int(config["max_history"])
        self.n_heads = int(config["n_heads"])
        self.batch_size = int(config["train_batch_size"])
        self.item_tower = str(config["item_tower"])
        if self.item_tower not in ITEM_TOWERS:
            raise ValueError(f"item_tower must be one of {', '.join(ITEM_TOWERS)}, not {self.item_tower!r}")
        self.softmax_items = str(config["softmax_items"])
        if self.softmax_items not in SOFTMAX_ITEMS:
            raise ValueError(f"softmax_items must be one of {', '.join(SOFTMAX_ITEMS)}, not {self.softmax_items!r}")
        self.positions = nn.Embedding(self.max_history, self.hidden)
        layer = nn.TransformerEncoderLayer(self.hidden, self.n_heads, int(config["inner_size"]),
                                           float(config["dropout_prob"]), batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, int(config["n_layers"]), enable_nested_tensor=False)
        self.norm = nn.LayerNorm(self.hidden)
        scale = torch.tensor(float(config["logit_scale"])).log()
        self.log_scale = nn.Parameter(scale) if config["learn_scale"] else nn.Buffer(scale)
        self.loss_mode = "contrastive"
        causal = torch.ones(self.max_history, self.max_history, dtype=torch.bool).triu(1)
        self.register_buffer("causal", causal, persistent=False)
        self._item_cache: torch.Tensor | None = None

    def set_content(self, content: torch.Tensor, present: torch.Tensor, users: np.ndarray, items: np.ndarray) -> None:
        """Give the towers their inputs: ``content`` [n_items, d] (rows without a vector: ``present`` False) and
        the training histories as parallel arrays of internal user and item ids, each user's in time order."""
        device, dim = content.device, int(content.shape[1])
        self.register_buffer("content", F.normalize(content.float(), dim=-1), persistent=False)
        self.register_buffer("present", present, persistent=False)
        self.missing = nn.Parameter(torch.zeros(dim, device=device))  # an item without content: learned
        self.project_in = nn.Linear(dim, self.hidden).to(device)
        self.project_out = nn.Linear(self.hidden, dim).to(device)
        if self.item_tower == "mlp":
            self.item_mlp = nn.Sequential(nn.Linear(dim, self.hidden), nn.GELU(), nn.Linear(self.hidden, dim)).to(device)
        order = np.argsort(users, kind="stable")  # grouped by user, each user's time order kept
        users, items = users[order], items[order]
        offsets = np.searchsorted(users, np.arange(self.n_users + 1))
        self.register_buffer("sequence", torch.from_numpy(items).to(device), persistent=False)
        # left out of the full softmax: padding (0) and, with softmax_items=trained, the items no history holds
        untrained = torch.ones(self.n_items, dtype=torch.bool)
        untrained[torch.from_numpy(items) if self.softmax_items == "trained" else slice(1, None)] = False
        self.register_buffer("untrained", untrained.to(device), persistent=False)
        self.register_buffer("offsets", torch.from_numpy(offsets).to(device), persistent=False)
        # Chunks, from each sequence's end backwards: targets at ranks [end - max_history, end), end > 1.
        lengths = np.diff(offsets)
        counts = np.maximum(lengths - 1 + self.max_history - 1, 0) // self.max_history
        chunk_users = np.repeat(np.arange(self.n_users), counts)
        step = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        ends = lengths[chunk_users] - step * self.max_history
        self.register_buffer("chunk_users", torch.from_numpy(chunk_users).to(device), persistent=False)
        self.register_buffer("chunk_ends", torch.from_numpy(ends).to(device), persistent=False)
        self._item_cache = None

    def batches(self) -> Iterator[Interaction]:
        """One epoch's training batches: the chunks in a random order (torch's generator, which kt
        checkpoints), ``train_batch_size`` chunks each."""
        order = torch.randperm(len(self.chunk_users)).to(self.chunk_users.device)
        for rows in order.split(self.batch_size):
            yield Interaction({self.USER_ID: self.chunk_users[rows], "chunk_end": self.chunk_ends[rows]})

    # --- the towers ---------------------------------------------------------------------------------------
    def _embed(self, items: torch.Tensor) -> torch.Tensor:
        """Content embeddings of item ids (the learned ``missing`` vector where an item has none)."""
        return torch.where(self.present[items].unsqueeze(-1), self.content[items], self.missing)

    def _encode(self, history: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """PAL's transformer over a [batch, length] window of item ids, right-aligned (``padding`` True at
        padding): the hidden state at every position, before the output projection."""
        length = history.shape[1]
        unique, inverse = torch.unique(history, return_inverse=True)  # project each distinct item once
        x = self.project_in(self._embed(unique))[inverse] + self.positions.weight[-length:]
        # Causal, padding never attended; a padding position attends itself, so no row is all-masked (NaN).
        blocked = self.causal[:length, :length] | padding.unsqueeze(1)
        blocked = blocked & ~torch.eye(length, dtype=torch.bool, device=blocked.device)
        return self.norm(self.transformer(x, mask=blocked.repeat_interleave(self.n_heads, dim=0)))

    def _out(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.project_out(hidden), dim=-1)

    def _window(self, users: torch.Tensor, ends: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each user's training items at ranks ``[end - max_history, end)``, right-aligned, and the padding."""
        rank = ends.unsqueeze(1) + torch.arange(-self.max_history, 0, device=users.device)
        padding = rank < 0
        index = (self.offsets[users].unsqueeze(1) + rank.clamp_min(0)).clamp_max(max(len(self.sequence) - 1, 0))
        return torch.where(padding, torch.zeros_like(index), self.sequence[index]), padding

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        """User vectors from each user's last ``max_history`` training items (zero for a user without any)."""
        ends = self.offsets[users + 1] - self.offsets[users]
        known = ends > 0
        vectors = torch.zeros((len(users), self.content.shape[1]), device=users.device)
        if known.any():
            items, padding = self._window(users[known], ends[known])
            vectors[known] = self._out(self._encode(items, padding)[:, -1])
        return vectors

    def item_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """Item vectors (all items by default, cached while the model is not training)."""
        if items is None:
            if self._item_cache is not None and not self.training:
                return self._item_cache
            vectors = torch.cat([self.item_vectors(chunk) for chunk in
                                 torch.arange(self.n_items, device=self.content.device).split(4096)])
            vectors[0] = 0  # RecBole's padding item
            self._item_cache = None if self.training else vectors
            return vectors
        if self.item_tower == "mlp":
            return F.normalize(self.item_mlp(self._embed(items)), dim=-1)
        single = items.unsqueeze(1)
        return self._out(self._encode(single, torch.zeros_like(single, dtype=torch.bool))[:, -1])

    def train(self, mode: bool = True):
        self._item_cache = None
        return super().train(mode)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        self._item_cache = None
        return super().load_state_dict(state_dict, strict, assign)

    def towers(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every user's and item's vector (rows by internal id), scaled so their inner product is the score."""
        users = torch.arange(self.n_users, device=self.content.device)
        user_vectors = torch.cat([self.user_vectors(chunk) for chunk in users.split(1024)])
        return user_vectors * self.log_scale.exp(), self.item_vectors()

    # --- RecBole's interface ----------------------------------------------------------------------------
    def calculate_loss(self, interaction) -> torch.Tensor:
        """The dense loss over a batch of chunks (see the module docstring)."""
        users, ends = interaction[self.USER_ID], interaction["chunk_end"]
        inputs, padding = self._window(users, ends - 1)
        targets, _ = self._window(users, ends)
        valid = ~padding
        predicted = self._out(self._encode(inputs, padding)[valid])
        targets = targets[valid]
        scale = self.log_scale.exp()
        if self.loss_mode == "full":
            logits = scale * predicted @ self.item_vectors().T
            logits[:, self.untrained] = -torch.inf
            rows = users.unsqueeze(1).expand_as(padding)[valid]
            return F.cross_entropy(logits.masked_fill(self._seen_mask(rows, targets), -torch.inf), targets)
        candidates, labels = torch.unique(targets, return_inverse=True)
        return F.cross_entropy(scale * predicted @ self.item_vectors(candidates).T, labels)

    def _seen_mask(self, users: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """[rows, n_items]: the row's user's training items other than the row's target."""
        lengths = self.offsets[users + 1] - self.offsets[users]
        rows = torch.repeat_interleave(torch.arange(len(users), device=users.device), lengths)
        starts = torch.repeat_interleave(self.offsets[users], lengths)
        within = torch.arange(int(lengths.sum()), device=users.device) - torch.repeat_interleave(
            torch.cumsum(lengths, 0) - lengths, lengths)
        mask = torch.zeros((len(users), self.n_items), dtype=torch.bool, device=users.device)
        mask[rows, self.sequence[starts + within]] = True
        mask[torch.arange(len(users), device=users.device), targets] = False
        return mask

    def predict(self, interaction) -> torch.Tensor:
        users, items = interaction[self.USER_ID], interaction[self.ITEM_ID]
        return self.log_scale.exp() * (self.user_vectors(users) * self.item_vectors()[items]).sum(-1)

    def full_sort_predict(self, interaction) -> torch.Tensor:
        return self.log_scale.exp() * self.user_vectors(interaction[self.USER_ID]) @ self.item_vectors().T
