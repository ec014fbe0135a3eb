"""The one-layer toy: Prop. 1's edit, its gradient-descent fit, and Thm. 2 on orthogonal keys."""

import json

import numpy as np
import pytest

from lorareuse_plugin.theory.run import OUTCOMES, run_theory, thm2
from lorareuse_plugin.theory.toy import (
    edit_change,
    fit_rank_one,
    min_norm_edit,
    random_toy,
    rank_one_edit,
    store_exact,
    store_trained,
    symbolic_toy,
)


@pytest.fixture(scope="module")
def toy():
    return random_toy(np.random.default_rng(0), n=8, d=64, m=256, relation_scale=1.0, overlap=0.0)


def test_the_exact_store_answers_every_prompt(toy):
    W = store_exact(toy)
    logits = toy.keys() @ W.T
    assert (logits.argmax(1) == toy.targets()).all()
    assert np.allclose(logits, np.eye(toy.n)[toy.targets()], atol=1e-8)  # one-hot outputs: margin 1


def test_the_closed_form_edit_flips_its_fact_and_no_other_on_orthogonal_keys():
    toy = symbolic_toy(6, (1, 2, 3, 4, 5, 0), (2, 3, 4, 5, 0, 1))
    W, K = store_exact(toy), toy.keys()
    for x in range(toy.n):
        old = toy.answer(x, "R1")
        new = (old + 3) % toy.n
        k = toy.key(x, "R1")
        dW = rank_one_edit(edit_change(W, k, new, old), k)
        after = K @ (W + dW).T
        own = toy.prompts().index((x, "R1"))
        assert after[own].argmax() == new and after[own][new] - np.delete(after[own], new).max() > 0
        others = [i for i in range(len(K)) if i != own]
        assert (after[others].argmax(1) == toy.targets()[others]).all()
        assert np.linalg.matrix_rank(dW) == 1


def test_on_overlapping_keys_the_edit_moves_other_facts_by_their_overlap(toy):
    """Prop. 1's mechanism on a random toy (ReLU keys overlap): the edit adds exactly
    (k·k'/‖k‖²)·(i_new − i_old) at every other key k', and flips its own fact with margin 1."""
    W, K = store_exact(toy), toy.keys()
    x, old = 3, toy.answer(3, "R1")
    new = (old + 1) % toy.n
    k = toy.key(x, "R1")
    d = edit_change(W, k, new, old)
    dW = rank_one_edit(d, k)
    after = (W + dW) @ k
    assert after.argmax() == new and np.isclose(after[new] - np.delete(after, new).max(), 1.0)
    overlap = K @ k / (k @ k)
    assert np.allclose(K @ dW.T, np.outer(overlap, d), atol=1e-10)


def test_gradient_descent_recovers_the_closed_form_and_it_is_the_minimum_norm_edit(toy):
    W = store_trained(toy)
    k = toy.key(5, "R1")
    old = toy.answer(5, "R1")
    d = edit_change(W, k, (old + 2) % toy.n, old)
    closed = rank_one_edit(d, k)
    fitted = fit_rank_one(d, k, np.random.default_rng(1))
    cos = fitted.ravel() @ closed.ravel() / (np.linalg.norm(fitted) * np.linalg.norm(closed))
    assert cos >= 0.99
    assert np.allclose(min_norm_edit(d, k), closed, atol=1e-10)
    assert np.allclose(fitted @ k, d, atol=1e-3)  # the fit makes the asked-for change


def test_summed_edits_never_compose_when_keys_are_orthogonal():
    n = 6
    r1, r2 = (1, 2, 3, 4, 5, 0), (2, 3, 4, 5, 0, 1)
    toy = symbolic_toy(n, r1, r2)
    K = toy.keys()
    assert np.allclose(K @ K.T, np.eye(len(K)))  # the construction: orthonormal keys
    W = store_exact(toy)
    rng = np.random.default_rng(0)
    rows = [thm2(toy, W, rng) for _ in range(200)]
    assert all(r is not None for r in rows)
    assert not any(r["sum"] == OUTCOMES[0] or r["mean"] == OUTCOMES[0] for r in rows)
    assert all(r["sum"] == "old answer" for r in rows)  # orthogonal keys: the two-hop prompt is untouched
    assert all(r["control"] == OUTCOMES[0] for r in rows)  # an edit at the two-hop key itself composes
    assert all(r["sum keeps both one-hop edits"] for r in rows)


def test_run_theory_writes_its_json_and_plot(tmp_path):
    said = []
    result = run_theory(tmp_path, seed=3, trials=12, log=said.append)
    data = json.loads((tmp_path / "theory.json").read_text())
    assert data == json.loads(json.dumps(result)) and data["trials"] == 12
    assert (tmp_path / "theory.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    exact = data["stores"]["exact"]
    assert exact["prop1"]["flips"]["rate"] == 1.0
    assert exact["thm2"]["control"][OUTCOMES[0]]["rate"] == 1.0
    assert sum(v["k"] for v in exact["thm2"]["sum"].values()) == exact["thm2"]["sum"][OUTCOMES[0]]["n"]
    assert "Thm. 2" in said[0]
    assert run_theory(tmp_path / "again", seed=3, trials=12, log=said.append) == result  # seeded
