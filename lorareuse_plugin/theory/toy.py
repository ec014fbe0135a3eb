"""The paper's one-layer toy, reconstructed: a fact store in an MLP read-out, and rank-one edits of it.

A prompt is two tokens, a subject X and a relation REL. One attention step copies the subject into
the relation's position through a value map V (the model attends to the subject only), so the MLP
reads ``V·e_X + e_REL`` and its key is ``k = ReLU(U·V·e_X + U·e_REL)``; a read-out W maps the key to
one logit per entity. Facts live in W: ``W·k(X, REL)`` must point at REL(X).

The two-hop question "what is r2 of r1 of X" is the prompt (X, R21) with **its own relation token**
R21. A one-layer model reads its input once: it cannot look up r1(X) and then read r2 of that, so a
two-hop question it can answer at all is a third relation whose facts the store holds on their own
(the base "knows" the old composition, as our base knows real chains). Whether an edit of r1 and an
edit of r2 reach the two-hop answer is then a question about keys: an edit made on k(Y, R2) acts on
k(X, R21) in proportion to their overlap. The statements are reconstructed from secondary summaries
of arXiv:2506.13479 (its full text was not reachable); nothing here is taken from its code.

numpy only: the whole toy runs in seconds on a laptop.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

RELATIONS = ("R1", "R2", "R21")  # r1, r2 and the two-hop relation r2∘r1, each its own token


@dataclass(frozen=True)
class Toy:
    """Embeddings of ``n`` entities then the three relations (rows of ``emb``), V, U and the facts.

    ``r1[x]`` and ``r2[x]`` are x's two relations; the two-hop fact of x is ``r2[r1[x]]``."""

    emb: np.ndarray  # [n + 3, d]
    V: np.ndarray  # [d, d]
    U: np.ndarray  # [m, d]
    r1: tuple[int, ...]
    r2: tuple[int, ...]

    @property
    def n(self) -> int:
        return len(self.r1)

    def key(self, x: int, rel: str) -> np.ndarray:
        """k(X, REL) = ReLU(U·V·e_X + U·e_REL): what the MLP read-out sees for the prompt."""
        h = self.V @ self.emb[x] + self.emb[self.n + RELATIONS.index(rel)]
        return np.maximum(self.U @ h, 0.0)

    def answer(self, x: int, rel: str) -> int:
        return {"R1": self.r1[x], "R2": self.r2[x], "R21": self.r2[self.r1[x]]}[rel]

    def prompts(self) -> list[tuple[int, str]]:
        """Every prompt the store holds: (x, REL) for every entity and relation."""
        return [(x, rel) for rel in RELATIONS for x in range(self.n)]

    @cached_property
    def _keys(self) -> np.ndarray:
        return np.stack([self.key(x, rel) for x, rel in self.prompts()])

    def keys(self) -> np.ndarray:
        """[prompts, m], in the order of ``prompts()`` (computed once per toy)."""
        return self._keys

    def targets(self) -> np.ndarray:
        return np.array([self.answer(x, rel) for x, rel in self.prompts()])


def random_toy(
    rng: np.random.Generator, n: int, d: int, m: int, relation_scale: float = 1.0, overlap: float = 0.0
) -> Toy:
    """Gaussian embeddings and maps; r1, r2 random functions of the entities.

    ``overlap`` ∈ [0, 1] makes the two-hop relation's embedding resemble r2's
    (``e_R21 = overlap·e_R2 + √(1 − overlap²)·g``) and ``relation_scale`` weighs relations against
    subjects: together they set how much k(X, R21) overlaps k(Y, R2), the quantity the theorem turns on."""
    if not 0.0 <= overlap <= 1.0:
        raise ValueError(f"overlap={overlap}: use a number in [0, 1]")
    ents = rng.standard_normal((n, d)) / np.sqrt(d)
    rels = relation_scale * rng.standard_normal((3, d)) / np.sqrt(d)
    rels[2] = overlap * rels[1] + np.sqrt(1.0 - overlap**2) * rels[2]
    return Toy(
        emb=np.concatenate([ents, rels]),
        V=rng.standard_normal((d, d)) / np.sqrt(d),
        U=rng.standard_normal((m, d)) / np.sqrt(d),
        r1=tuple(int(v) for v in rng.integers(0, n, n)),
        r2=tuple(int(v) for v in rng.integers(0, n, n)),
    )


def symbolic_toy(n: int, r1: tuple[int, ...], r2: tuple[int, ...]) -> Toy:
    """A toy whose keys are exactly orthonormal: one-hot embeddings, V = I, and one MLP unit per
    prompt that fires only for its own subject *and* relation (its pre-activation is
    [X = X_j] − [REL ≠ REL_j]). The theorem's cleanest case: no key overlaps any other."""
    d = n + 3
    emb = np.eye(d)
    prompts = [(x, r) for r in range(3) for x in range(n)]
    U = np.zeros((len(prompts), d))
    for j, (x, r) in enumerate(prompts):
        U[j, x] = 1.0
        for other in range(3):
            if other != r:
                U[j, n + other] = -1.0
    return Toy(emb=emb, V=np.eye(d), U=U, r1=tuple(r1), r2=tuple(r2))


def store_exact(toy: Toy) -> np.ndarray:
    """The read-out W (by construction) with W·k = one-hot of the answer for every prompt: the
    minimum-norm solution of those equations (needs as many MLP units as prompts)."""
    K, T = toy.keys(), np.eye(toy.n)[toy.targets()]
    return np.linalg.lstsq(K, T, rcond=None)[0].T


def store_trained(toy: Toy, steps: int = 400, lr: float = 5.0) -> np.ndarray:
    """The read-out W learned by full-batch gradient descent on cross-entropy from zero, the toy's
    other store: not hand-tuned, logits of its own scale, and it may not learn every fact (where
    keys nearly coincide); the experiments edit only facts it knows."""
    K, targets = toy.keys(), toy.targets()
    K = K / max(float(np.linalg.norm(K, axis=1).mean()), 1e-12)  # a step size that fits any scale
    W = np.zeros((toy.n, K.shape[1]))
    onehot = np.eye(toy.n)[targets]
    for _ in range(steps):
        logits = K @ W.T
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        W -= lr * (p - onehot).T @ K / len(K)
    return W / max(float(np.linalg.norm(toy.keys(), axis=1).mean()), 1e-12)


def edit_change(W: np.ndarray, k: np.ndarray, new: int, old: int) -> np.ndarray:
    """The output change an edit asks for: swap the old answer's logit and the new one's
    (``λ·(i_new − i_old)`` with λ = ℓ_old − ℓ_new; λ = 1 on the exact store, Prop. 1's unit change)."""
    logits = W @ k
    d = np.zeros(W.shape[0])
    lam = logits[old] - logits[new]
    d[new], d[old] = lam, -lam
    return d


def rank_one_edit(d: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Prop. 1: ΔW = d·kᵀ/‖k‖² — the rank-one change that adds ``d`` to the output at key ``k``."""
    return np.outer(d, k) / float(k @ k)


def min_norm_edit(d: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The least-squares (minimum-norm) ΔW with ΔW·k = d, by numpy's solver: the closed form's check."""
    return np.linalg.lstsq(k[None, :], d[None, :], rcond=None)[0].T


def fit_rank_one(
    d: np.ndarray, k: np.ndarray, rng: np.random.Generator, steps: int = 3000, lr: float = 0.1, init: float = 1e-3
) -> np.ndarray:
    """A rank-one LoRA ``B·A`` (B: [out, 1], A: [1, m]) fitted by gradient descent from a small
    random start to make the same output change at ``k``: ½‖B·A·k − d‖² (the step is divided by
    ‖d‖, so the fit behaves alike at every logit scale)."""
    scale = float(np.linalg.norm(k))
    k_unit = k / scale
    lr = lr / max(float(np.linalg.norm(d)), 1e-12)
    B = init * rng.standard_normal(d.shape[0])
    A = init * rng.standard_normal(k.shape[0])
    for _ in range(steps):
        r = B * float(A @ k_unit) - d
        gB = r * float(A @ k_unit)
        gA = float(B @ r) * k_unit
        B, A = B - lr * gB, A - lr * gA
    return np.outer(B, A) / scale
