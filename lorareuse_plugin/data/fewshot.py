"""Few-shot examples that never share an entity with a test item.

``--num_fewshot`` must show the answer format, not the answers: lm-eval draws examples from the
task's ``fewshot_split`` (or, without one, from the test split itself — other test items, whose
people and bridges the test shares). Every task's few-shot split is built here, in the exact
document format of its split, over entities of the background world's fresh name space: a name
space disjoint from every test world (the leakage tests prove it), new names per document. The
examples are the same for every seed, familiarity and library, so a shot count is comparable
across them.
"""

from __future__ import annotations

from lorareuse_plugin.data import formats as fmt

FEWSHOT_DOCS = 8
FEWSHOT_VERSION = 1


def _twohop(split: str, n: int, namer, r) -> list[dict]:
    from lorareuse_plugin.data import twohop

    chains = [twohop.Chain(namer.person(), namer.country(), namer.city()) for _ in range(n + 1)]
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


def _math_ks(split: str, n: int, namer, r) -> list[dict]:
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


def _math_ss(split: str, n: int, namer, r) -> list[dict]:
    from lorareuse_plugin.data import math_ss

    out = []
    for i in range(n):
        name, items = namer.person().split()[0], namer.creature() + "s"
        two_step = split in ("test", "probe_target")
        p = math_ss.Problem(
            name, r.choice(math_ss.CONTAINERS), items, r.randint(2, 9), r.randint(2, 9), r.randint(1, 20) * two_step
        )
        render = {"probe_add": math_ss._add, "probe_mul": math_ss._mul}.get(split, math_ss._two_step)
        q, a, why = render(p)
        near = fmt.number_distractors(a, [a + 1, a - 1, a + 2], r)
        out.append(fmt.eval_doc(f"fewshot-math_ss-{split}-{i}", q, str(a), reasoning=why, rnd=r, choices=near))
    return out


_BUILDERS = {"twohop": _twohop, "math_ks": _math_ks, "math_ss": _math_ss}


def fewshot_docs(family: str, split: str, n: int = FEWSHOT_DOCS) -> list[dict]:
    """``n`` documents in ``split``'s format over background entities no test world contains."""
    from lorareuse_plugin.world.background import background_world, fresh_namer
    from lorareuse_plugin.world.seeding import rng

    namer = fresh_namer(background_world(), f"fewshot-{family}-{split}")
    return _BUILDERS[family](split, n, namer, rng("fewshot", FEWSHOT_VERSION, family, split))
