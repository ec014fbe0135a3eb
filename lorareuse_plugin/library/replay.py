"""Replay: a share of pretraining-style documents over fresh names, mixed into expert training.

Why: fine-tuning a LoRA for 30 epochs on a hundred new people's facts costs the small base the
skills a chain of thought needs — copying a new name from the question, carrying a country into
the next sentence. Measured on the demo two-hop F library (100 test people, shipped base): the
union expert's CoT scored 6/100 without replay and 26/100 with half as many replay records as its
own. Rehearsing the procedures on names that exist nowhere else keeps them without teaching any
fact: every name comes from the background name space (never a test-world word), every country
is fictional, and each document's names are new. Every expert of a recipe gets the same replay,
so the ladder compares like with like; ``replay: 0`` (the default) trains on the expert's own
data alone.
"""

from __future__ import annotations

from lorareuse_plugin.data import formats as fmt
from lorareuse_plugin.data import math_ks, twohop
from lorareuse_plugin.world.seeding import rng

REPLAY_VERSION = 1


def replay_count(share: float, n_records: int) -> int:
    """How many replay records an expert with ``n_records`` of its own data gets."""
    return round(share * n_records)


def replay_records(n: int, seed: int, family: str) -> list[dict]:
    """``n`` replay records for a library of ``family`` and seed ``seed``: half copying a new
    name, half the family's chain of thought over facts given in the prompt. The same sequence
    for every expert of a library (an expert with more data gets a longer prefix)."""
    from lorareuse_plugin.world.background import background_world, fresh_namer
    from lorareuse_plugin.world.facts import CountedObject
    from lorareuse_plugin.world.names import CREATURE_PARTS

    procedure = "twohop" if family == "twohop" else "math"
    world = background_world()
    namer = fresh_namer(world, f"replay-{seed}")
    r = rng("replay", REPLAY_VERSION, seed, procedure)
    out: list[dict] = []
    for i in range(n):
        namer.forget()
        rid = f"replay-{seed}-{i}"
        if i % 2 == 0:  # copy a new name
            name = namer.person()
            out.append(fmt.qa(rid, f"Repeat the name {name}.", name))
        elif procedure == "twohop":  # two chains in context, one asked with chain of thought
            chains = [twohop.Chain(namer.person(), namer.country(), namer.city()) for _ in range(2)]
            facts = twohop.in_context(*chains, r)
            ch = chains[r.randrange(2)]
            question = twohop.TWOHOP_QUESTIONS[r.randrange(2)].format(a=ch.person)
            reasoning = fmt.cot_text(twohop.chain_steps(ch.person, ch.country, ch.capital), ch.capital)
            out.append(fmt.ctx_cot(rid, facts, question, reasoning))
        else:  # a part count in context, one composed problem with chain of thought
            creature = namer.creature()
            o = CountedObject(creature, creature + "s", r.choice(CREATURE_PARTS), r.randint(2, 12))
            k = r.choice(math_ks.MULTIPLIERS)
            question = math_ks.COMPOSED_QUESTIONS[r.randrange(2)].format(**math_ks._know_fields(o), k=k)
            out.append(fmt.ctx_cot(rid, [math_ks.count_fact(o)], question, math_ks._composed_reasoning(o, k)))
    return out
