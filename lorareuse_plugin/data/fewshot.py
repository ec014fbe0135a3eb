"""Few-shot examples that never share an entity with a test item.

``--num_fewshot`` must show the answer format, not the answers: lm-eval draws examples from the
task's ``fewshot_split`` (or, without one, from the test split itself — other test items, whose
people and bridges the test shares). Every task's few-shot split is built here, in the exact
document format of its split:

- where the split's facts are fictional (F, math), over entities of the background world's fresh
  name space, disjoint from every test world (the leakage tests prove it); the same examples for
  every seed and library;
- where they are real (two-hop R: both hops; H: the country and its capital), over *real* facts of
  our tables that this world's test and target never use (people born, and capitals of, other
  countries; most famous first). A real model shown fictional examples answers "Poland" for the
  capital of Poland — it takes the examples' made-up names as the format — so real questions get
  real examples. A world too large to leave enough spare real facts tops up with fictional ones and
  logs it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lorareuse_plugin.data import formats as fmt

if TYPE_CHECKING:  # pragma: no cover
    from lorareuse_plugin.data.spec import SplitSpec

log = logging.getLogger(__name__)

FEWSHOT_DOCS = 8
FEWSHOT_VERSION = 1


def _twohop(split: str, n: int, namer, r, spec: SplitSpec | None = None) -> list[dict]:
    from lorareuse_plugin.data import twohop

    chains = [twohop.Chain(namer.person(), namer.country(), namer.city()) for _ in range(n + 1)]
    if spec is not None and spec.familiarity is not None and spec.familiarity.value in ("R", "H"):
        chains = _spare_real_chains(spec, namer, n + 1, split) + chains
    return _twohop_docs(split, n, chains[: n + 1], r)


def _spare_real_chains(spec: SplitSpec, namer, want: int, split: str) -> list:
    """Up to ``want`` chains over real facts the world's test and target chains never use: one
    country each, none of the world's bridges; R: a real person born there (table order, the most
    famous first), H: a fresh fictional person (H's people are fictional)."""
    from lorareuse_plugin.data import twohop
    from lorareuse_plugin.world.facts import real_facts

    facts = real_facts()
    test, target, _ = twohop.chains(spec.familiarity, spec.seed, spec.sizes, spec.known)
    used_people = {c.person for c in test + target}
    used_countries = {c.country for c in test + target}
    out: list = []
    if spec.familiarity.value == "R":
        seen: set[str] = set()
        for p in facts.people:
            if p.name in used_people or p.birth_country in used_countries or p.birth_country in seen:
                continue
            seen.add(p.birth_country)
            out.append(twohop.Chain(p.name, p.birth_country, facts.capital_of[p.birth_country]))
    else:
        spare = [c for c in facts.countries if c.name not in used_countries]
        out = [twohop.Chain(namer.person(), c.name, c.capital) for c in spare[:want]]
    if len(out) < want:
        log.warning(
            "twohop %s world (n_test=%d, n_target=%d) leaves %d real fact(s) outside its test and target: "
            "few-shot examples of %s past the first %d are fictional; lower n_test for real ones",
            spec.familiarity.value,
            spec.sizes.n_test,
            spec.sizes.n_target,
            len(out),
            split,
            max(0, len(out) - 1),
        )
    return out[:want]


def _twohop_docs(split: str, n: int, chains: list, r) -> list[dict]:
    """``n`` documents in ``split``'s format over ``chains`` (``n + 1`` of them: the last one is
    only the in-context distractor of the one before)."""
    from lorareuse_plugin.data import twohop

    cities = [c.capital for c in chains]
    countries = [c.country for c in chains]
    out = []
    for i, ch in enumerate(chains[:n]):
        other = chains[i + 1]
        doc_id = f"fewshot-twohop-{split}-{i}"
        if split == "probe_hop1":
            q = twohop.HOP1_QUESTIONS[0].format(a=ch.person)
            out.append(
                fmt.eval_doc(
                    doc_id, q, ch.country, reasoning="", rnd=r, choices=fmt.distractors(countries, ch.country, r)
                )
            )
        elif split == "probe_hop2":
            q = twohop.HOP2_QUESTIONS[0].format(b=ch.country)
            out.append(
                fmt.eval_doc(doc_id, q, ch.capital, reasoning="", rnd=r, choices=fmt.distractors(cities, ch.capital, r))
            )
        else:  # test, probe_target: the composed question, with its chain and an in-context form
            steps = twohop.chain_steps(ch.person, ch.country, ch.capital)
            out.append(
                fmt.eval_doc(
                    doc_id,
                    twohop.TWOHOP_QUESTIONS[0].format(a=ch.person),
                    ch.capital,
                    reasoning=fmt.cot_text(steps, ch.capital),
                    rnd=r,
                    intermediate=ch.country,
                    choices=[other.capital]
                    + fmt.distractors([c for c in cities if c != other.capital], ch.capital, r, k=2),
                    context=twohop.in_context(ch, other, r),
                )
            )
    return out


def _math_ks(split: str, n: int, namer, r, spec: SplitSpec | None = None) -> list[dict]:
    from lorareuse_plugin.data import math_ks
    from lorareuse_plugin.world.facts import CountedObject
    from lorareuse_plugin.world.names import CREATURE_PARTS

    objects = []
    for _ in range(n + 1):
        name = namer.creature()
        objects.append(CountedObject(name, name + "s", r.choice(CREATURE_PARTS), r.randint(2, 9)))
    out = []
    for i, o in enumerate(objects[:n]):
        doc_id = f"fewshot-math_ks-{split}-{i}"
        f = math_ks._know_fields(o)
        if split == "probe_knowledge":
            near = fmt.number_distractors(o.count, [o.count + 1, o.count - 1, o.count + 2], r)
            q = math_ks.KNOW_QUESTIONS[0].format(**f)
            out.append(fmt.eval_doc(doc_id, q, str(o.count), reasoning="", rnd=r, choices=near))
        elif split == "probe_skill":  # the skill over a fresh item word: numbers given, no fact needed
            sp = math_ks.SkillProblem(r.choice(math_ks.CONTAINERS), o.plural, o.count, r.choice(math_ks.MULTIPLIERS))
            near = fmt.number_distractors(sp.answer, math_ks._near_misses(sp.k, sp.n), r)
            out.append(fmt.eval_doc(doc_id, sp.question, str(sp.answer), reasoning=sp.reasoning, rnd=r, choices=near))
        else:
            k = r.choice(math_ks.MULTIPLIERS)
            other = objects[i + 1]
            context = [math_ks.count_fact(x) for x in (o, other)]
            r.shuffle(context)
            out.append(
                fmt.eval_doc(
                    doc_id,
                    math_ks.COMPOSED_QUESTIONS[0].format(**f, k=k),
                    str(k * o.count),
                    reasoning=math_ks._composed_reasoning(o, k),
                    rnd=r,
                    intermediate=str(o.count),
                    choices=[str(k * other.count)]
                    + fmt.number_distractors(
                        k * o.count, [m for m in math_ks._near_misses(k, o.count) if m != k * other.count], r, k=2
                    ),
                    context=context,
                )
            )
    return out


def _math_ss(split: str, n: int, namer, r, spec: SplitSpec | None = None) -> list[dict]:
    from lorareuse_plugin.data import math_ss

    out = []
    for i in range(n):
        name, items = namer.person().split()[0], namer.creature() + "s"
        two_step = split in ("test", "probe_target")
        p = math_ss.Problem(
            name, r.choice(math_ss.CONTAINERS), items, r.randint(2, 9), r.randint(2, 9), r.randint(1, 20) * two_step
        )
        render = {"probe_add": math_ss._add, "probe_mul": math_ss._mul}.get(split, math_ss.two_step)
        q, a, why = render(p)
        near = fmt.number_distractors(a, [a + 1, a - 1, a + 2], r)
        out.append(fmt.eval_doc(f"fewshot-math_ss-{split}-{i}", q, str(a), reasoning=why, rnd=r, choices=near))
    return out


_BUILDERS = {"twohop": _twohop, "math_ks": _math_ks, "math_ss": _math_ss}


def fewshot_docs(family: str, split: str, n: int = FEWSHOT_DOCS, spec: SplitSpec | None = None) -> list[dict]:
    """``n`` documents in ``split``'s format: over background entities no test world contains, or,
    for the real facts of a two-hop R/H world ``spec``, over real facts that world does not use."""
    from lorareuse_plugin.world.background import background_world, fresh_namer
    from lorareuse_plugin.world.seeding import rng

    namer = fresh_namer(background_world(), f"fewshot-{family}-{split}")
    return _BUILDERS[family](split, n, namer, rng("fewshot", FEWSHOT_VERSION, family, split), spec)
