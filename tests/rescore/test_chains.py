"""The rescorer's pretraining chains: background entities only, never a test world's."""

import re

import pytest

from lorareuse_plugin.rescore.chains import PERTURBATIONS, background_chains, labelled
from lorareuse_plugin.rescore.model import RescorerConfig, corpus_chains
from tests.base.test_base import _fictional_entities


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_pretraining_corpus_shares_no_word_with_any_test_world_entity(seed):
    chains = corpus_chains(RescorerConfig())
    words = set(re.findall(r"[a-z]+", " ".join(c.question + " " + c.text for c in chains).lower()))
    entities = _fictional_entities(seed)
    assert len(entities) > 100 and len(chains) >= 3000
    assert sorted(e for e in entities if set(re.findall(r"[a-z]+", e.lower())) & words) == []


def test_chains_are_pure_functions_and_perturbations_cover_every_step():
    assert background_chains("x", 5) == background_chains("x", 5)
    lab = labelled(background_chains("x", 200))
    assert len(lab) == 1200 and sum(c.faithful for c in lab) == 600
    assert {c.perturbation for c in lab if not c.faithful} == set(PERTURBATIONS)
