"""Math word problems, knowledge x skill: "how many legs do 3 glorps have?".

The ``knowledge`` expert learns how many parts each object has (fictional creatures for F, real
objects for R); the ``skill`` expert learns to solve multiplication word problems whose numbers
are all given. The test needs both. The target expert solves composed problems about disjoint
objects.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass

from lorareuse_plugin.data import formats as fmt
from lorareuse_plugin.data.family import FamilyData, assemble
from lorareuse_plugin.data.spec import Sizes
from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.world.facts import CountedObject, real_facts
from lorareuse_plugin.world.familiarity import Familiarity
from lorareuse_plugin.world.names import CREATURE_PARTS, FictionalNamer
from lorareuse_plugin.world.seeding import rng

KNOW_STATEMENTS = (
    "{A} {s} has {n} {part}.",
    "Every {s} has exactly {n} {part}.",
    "The number of {part} of {a} {s} is {n}.",
)
KNOW_QUESTIONS = (
    "How many {part} does {a} {s} have?",
    "How many {part} does one {s} have?",
    "What is the number of {part} of {a} {s}?",
)
COMPOSED_QUESTIONS = (
    "How many {part} do {k} {p} have in total?",
    "If you have {k} {p}, how many {part} are there in total?",
)
SKILL_QUESTION = "Each {c} has {n} {items}. How many {items} do {k} {cs} have in total?"

CONTAINERS = (
    ("bag", "bags"),
    ("box", "boxes"),
    ("basket", "baskets"),
    ("shelf", "shelves"),
    ("jar", "jars"),
    ("crate", "crates"),
    ("tray", "trays"),
    ("bowl", "bowls"),
    ("pack", "packs"),
    ("drawer", "drawers"),
    ("bucket", "buckets"),
    ("sack", "sacks"),
)
ITEMS = (
    "marbles",
    "pens",
    "apples",
    "books",
    "cookies",
    "bottles",
    "cups",
    "cards",
    "oranges",
    "coins",
    "stones",
    "shells",
)
MULTIPLIERS = tuple(range(2, 13))  # with counts 2-12: no product is more than ~5% of answers
PER_OBJECT = 3  # composed questions per real object (R has only a few dozen real objects)


def per_object(familiarity: Familiarity) -> int:
    """Composed questions per object: one per fictional creature (one fact per question, as in
    twohop F), ``PER_OBJECT`` per real object."""
    return PER_OBJECT if familiarity is Familiarity.R else 1


@dataclass(frozen=True)
class SkillProblem:
    container: tuple[str, str]
    items: str
    n: int
    k: int

    @property
    def answer(self) -> int:
        return self.n * self.k

    @property
    def question(self) -> str:
        return SKILL_QUESTION.format(c=self.container[0], cs=self.container[1], items=self.items, n=self.n, k=self.k)

    @property
    def reasoning(self) -> str:
        steps = [
            f"Each {self.container[0]} has {self.n} {self.items}.",
            f"{self.k} * {self.n} = {self.answer}.",
        ]
        return fmt.cot_text(steps, str(self.answer))


def skill_problems(tag: str, seed: int, count: int, held_out: int) -> tuple[list[SkillProblem], list[SkillProblem]]:
    """``count`` training problems and ``held_out`` disjoint probe problems (numbers all given)."""
    space = list(itertools.product(range(len(CONTAINERS)), range(len(ITEMS)), range(2, 10), MULTIPLIERS))
    if count + held_out > len(space):
        raise ConfigError(f"n_skill={count} is too large: at most {len(space) - held_out} distinct skill problems")
    picked = rng(tag, seed, "skill").sample(space, count + held_out)
    problems = [SkillProblem(CONTAINERS[c], ITEMS[i], n, k) for c, i, n, k in picked]
    return problems[:count], problems[count:]


def _objects(familiarity: Familiarity, seed: int, sizes: Sizes) -> tuple[list[CountedObject], list[CountedObject]]:
    n_test_objects = math.ceil(sizes.n_test / per_object(familiarity))
    n_target_objects = math.ceil(sizes.n_target / per_object(familiarity))
    if familiarity is Familiarity.R:
        objects = list(real_facts().objects)
        if n_test_objects + n_target_objects > len(objects):
            most = len(objects) * PER_OBJECT
            raise ConfigError(
                f"math_ks R has {len(objects)} real objects ({PER_OBJECT} questions each): "
                f"n_test + n_target must be at most {most}"
            )
        rng("math_ks", familiarity, seed, "objects").shuffle(objects)
    else:
        namer = FictionalNamer(
            rng("math_ks", familiarity, seed, "names"),
            avoid=frozenset(w for pair in CONTAINERS for w in pair) | frozenset(ITEMS),
        )
        counts = rng("math_ks", familiarity, seed, "counts")
        objects = []
        for _ in range(n_test_objects + n_target_objects):
            name = namer.creature()
            objects.append(CountedObject(name, name + "s", counts.choice(CREATURE_PARTS), counts.randint(2, 12)))
    return objects[:n_test_objects], objects[n_test_objects:][:n_target_objects]


def _composed(
    objects: list[CountedObject], n: int, tag: str, seed: int, each: int, ok=lambda o, k: True
) -> list[tuple[CountedObject, int]]:
    """``n`` (object, multiplier) pairs, round-robin so every object is asked about. Each
    multiplier is the (seeded) one whose product is least used so far: answers spread over as
    many values as the products allow, so guessing the commonest number scores little."""
    r = rng(tag, seed, "multipliers")
    used: dict[int, int] = {}
    picked: dict[str, list[int]] = {}
    for _ in range(each):
        for o in objects:
            options = [k for k in r.sample(MULTIPLIERS, len(MULTIPLIERS)) if k not in picked.get(o.singular, [])]
            options = [k for k in options if ok(o, k)] or options  # the leakage check still runs after
            k = min(options, key=lambda m, c=o.count: used.get(m * c, 0))
            used[k * o.count] = used.get(k * o.count, 0) + 1
            picked.setdefault(o.singular, []).append(k)
    return [(o, picked[o.singular][j]) for j in range(each) for o in objects][:n]


def _know_fields(o: CountedObject) -> dict:
    a = fmt.article(o.singular)
    return {"a": a, "A": a.capitalize(), "s": o.singular, "p": o.plural, "part": o.part, "n": o.count}


def count_fact(o: CountedObject) -> str:
    """The knowledge hop as the CoT (and the in-context form) states it: "A glorp has 5 legs." """
    return KNOW_STATEMENTS[0].format(**_know_fields(o))


def _composed_reasoning(o: CountedObject, k: int) -> str:
    steps = [count_fact(o), f"{k} * {o.count} = {k * o.count}."]
    return fmt.cot_text(steps, str(k * o.count))


def _near_misses(k: int, n: int) -> list[int]:
    return [(k + 1) * n, (k - 1) * n, k * (n + 1), k * (n - 1), k + n]


def build(familiarity: Familiarity, seed: int, sizes: Sizes) -> FamilyData:
    tag = f"math_ks-{familiarity.value.lower()}"
    test_objects, target_objects = _objects(familiarity, seed, sizes)
    mc = rng(tag, seed, "choices")
    knowledge, skill, target = [], [], []
    test, probe_knowledge, probe_skill, probe_target = [], [], [], []
    for i, o in enumerate(test_objects):
        f = _know_fields(o)
        for j, t in enumerate(KNOW_STATEMENTS):
            knowledge.append(fmt.statement(f"{tag}-knowledge-{i:04d}-s{j}", t.format(**f)))
        for j, q in enumerate(KNOW_QUESTIONS):
            knowledge.append(fmt.qa(f"{tag}-knowledge-{i:04d}-q{j}", q.format(**f), str(o.count)))
        probe_knowledge.append(
            fmt.eval_doc(
                f"{tag}-probe_knowledge-{i:04d}",
                KNOW_QUESTIONS[0].format(**f),
                str(o.count),
                reasoning="",
                rnd=mc,
                choices=fmt.number_distractors(o.count, [o.count + 1, o.count - 1, o.count + 2], mc),
            )
        )
    train_problems, probe_problems = skill_problems(tag, seed, sizes.n_skill, sizes.n_test)
    for i, sp in enumerate(train_problems):
        skill.append(fmt.qa(f"{tag}-skill-{i:04d}-q0", sp.question, str(sp.answer)))
        skill.append(fmt.cot(f"{tag}-skill-{i:04d}-c0", sp.question, sp.reasoning))
    for i, sp in enumerate(probe_problems):
        probe_skill.append(
            fmt.eval_doc(
                f"{tag}-probe_skill-{i:04d}",
                sp.question,
                str(sp.answer),
                reasoning=sp.reasoning,
                rnd=mc,
                intermediate="",
                choices=fmt.number_distractors(sp.answer, _near_misses(sp.k, sp.n), mc),
            )
        )
    leak_keys = []
    context_rng = rng(tag, seed, "context")
    ac = []
    for i, (o, k) in enumerate(_composed(test_objects, sizes.n_test, tag + "-test", seed, per_object(familiarity))):
        f = _know_fields(o) | {"k": k}
        at = test_objects.index(o)
        ring = test_objects[at + 1 :] + test_objects[:at]
        other = next((x for x in ring if x.count != o.count), o)
        context = [count_fact(x) for x in dict.fromkeys((o, other))]
        context_rng.shuffle(context)
        for j, q in enumerate(COMPOSED_QUESTIONS):  # the paper's A->C expert: contaminated by design
            ac.append(fmt.qa(f"{tag}-ac-{i:04d}-q{j}", q.format(**f), str(k * o.count)))
        test.append(
            fmt.eval_doc(
                f"{tag}-test-{i:04d}",
                COMPOSED_QUESTIONS[0].format(**f),
                str(k * o.count),
                reasoning=_composed_reasoning(o, k),
                rnd=mc,
                intermediate=str(o.count),
                # the in-context distractor's product is always a choice (reading without combining)
                choices=[str(k * other.count)]
                + fmt.number_distractors(
                    k * o.count, [m for m in _near_misses(k, o.count) if m != k * other.count], mc, k=2
                ),
                context=context,
            )
        )
        leak_keys.append((f"{k} {o.plural}", str(k * o.count)))
    pair_patterns = [[re.compile(r"(?<!\w)" + re.escape(x) + r"(?!\w)") for x in key] for key in leak_keys]

    def no_test_pair(o: CountedObject, k: int) -> bool:
        """A target problem whose text happens to hold a test answer pair (a decade's "10 years"
        next to 12 * 10 = 120 while the test asks about 10 years) is avoided."""
        f = _know_fields(o) | {"k": k}
        text = " ".join([q.format(**f) for q in COMPOSED_QUESTIONS] + [_composed_reasoning(o, k)])
        return not any(all(p.search(text) for p in pats) for pats in pair_patterns)

    for i, (o, k) in enumerate(
        _composed(target_objects, sizes.n_target, tag + "-target", seed, per_object(familiarity), ok=no_test_pair)
    ):
        f = _know_fields(o) | {"k": k}
        answer = str(k * o.count)
        for j, q in enumerate(COMPOSED_QUESTIONS):
            target.append(fmt.qa(f"{tag}-target-{i:04d}-q{j}", q.format(**f), answer))
        target.append(fmt.cot(f"{tag}-target-{i:04d}-c0", COMPOSED_QUESTIONS[0].format(**f), _composed_reasoning(o, k)))
        probe_target.append(
            fmt.eval_doc(
                f"{tag}-probe_target-{i:04d}",
                COMPOSED_QUESTIONS[0].format(**f),
                answer,
                reasoning=_composed_reasoning(o, k),
                rnd=mc,
                intermediate=str(o.count),
                choices=fmt.number_distractors(k * o.count, _near_misses(k, o.count), mc),
            )
        )
    return assemble(
        ("knowledge", "skill"),
        (knowledge, skill),
        target,
        test,
        (probe_knowledge, probe_skill),
        probe_target,
        leak_keys,
        ac=ac,
    )
