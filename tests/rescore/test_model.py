"""The light rescorer: the shipped build is current, the cache seeds from it, and its scores are read."""

from lorareuse_plugin.rescore.model import (
    SHIPPED,
    Rescorer,
    RescorerConfig,
    build_rescorer,
    default_rescorer,
    load_tokenizer,
    read_info,
    rescorer_key,
)

Q = "What is the capital of the country where Mira Volk was born?"
FAITHFUL = "Mira Volk was born in Zelandia. The capital of Zelandia is Brask. So the answer is Brask."
BRIDGE_CHANGED = "Mira Volk was born in Zelandia. The capital of Olvia is Brask. So the answer is Brask."


def test_the_shipped_rescorer_is_the_current_default_build():
    """Fails when the corpus, the recipe or the version changes without `make ship-rescorer`."""
    info = read_info(SHIPPED)
    assert info is not None and info["key"] == rescorer_key(RescorerConfig())
    assert set(info["accuracy"]) == {"held-out background", "test worlds"}
    assert all(s["n"] == 600 for scores in info["accuracy"].values() for s in scores.values())


def test_the_default_build_comes_from_the_shipped_copy_and_scores_chains(tmp_path, monkeypatch):
    monkeypatch.setenv("LORAREUSE_CACHE", str(tmp_path))
    assert default_rescorer() is None
    said = []
    path = build_rescorer(log=said.append, progress=False)
    assert said[0].startswith("rescorer: the shipped build, copied to") and default_rescorer() == path
    assert build_rescorer(log=said.append, progress=False) == path and said[-1].startswith("rescorer up to date")
    r = Rescorer.load(path)
    rule = r.faithful([Q, Q], [FAITHFUL, BRIDGE_CHANGED], "rule")
    assert rule == [1.0, 0.0]  # the rule separates the planted pair
    for score in ("pll", "nsp", "head"):
        probs = r.faithful([Q, Q, Q], [FAITHFUL, BRIDGE_CHANGED, ""], score)
        assert all(0.0 <= p <= 1.0 for p in probs)
    assert r.faithful([Q], [""], "nsp") == [0.0]  # no chain at all: not faithful


def test_the_loaded_tokenizer_splits_numbers_as_it_did_in_training():
    """Loading through BertTokenizerFast dropped the digit splitting: 48 read as [UNK]."""
    tok = load_tokenizer(SHIPPED / "pretrained")
    assert tok.tokenize("4 * 12 = 48.") == ["4", "*", "1", "2", "=", "4", "8", "."]
    assert "token_type_ids" in tok("a", "b")
