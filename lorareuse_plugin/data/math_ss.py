"""Math word problems, skill x skill: one expert adds, one multiplies; the test needs both.

``add``: "Tom has 7 pens and gets 5 more. How many pens does Tom have now?"
``mul``: "Tom has 3 boxes with 4 pens in each box. How many pens does Tom have?"
test:    "Tom has 3 boxes with 4 pens in each box, and 5 more pens. How many pens does Tom have in total?"
The target expert solves two-step problems about item kinds the test never uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from lorareuse_plugin.data import formats as fmt
from lorareuse_plugin.data.family import FamilyData, assemble
from lorareuse_plugin.data.math_ks import CONTAINERS
from lorareuse_plugin.data.spec import Sizes
from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.world.seeding import rng

NAMES = ("Tom", "Anna", "Maria", "Ben", "Lena", "Omar", "Yuki", "Ravi", "Sara", "Leo", "Nina", "Ivan")
TEST_ITEMS = ("pens", "apples", "books", "cookies", "marbles", "cards")
TARGET_ITEMS = ("bottles", "cups", "oranges", "coins", "stones", "shells")
ADD_QUESTION = "{name} has {x} {items} and gets {y} more. How many {items} does {name} have now?"
MUL_QUESTION = "{name} has {k} {cs} with {n} {items} in each {c}. How many {items} does {name} have?"
TWO_STEP_QUESTIONS = (
    "{name} has {k} {cs} with {n} {items} in each {c}, and {y} more {items}. "
    "How many {items} does {name} have in total?",
    "There are {k} {cs} with {n} {items} in each {c}. {name} adds {y} more {items}. "
    "How many {items} are there in total?",
)


@dataclass(frozen=True)
class Problem:
    name: str
    container: tuple[str, str]
    items: str
    k: int  # containers (mul), or first addend (add)
    n: int  # items per container (mul), or second addend (add)
    y: int = 0  # items added after multiplying (two-step only)

    def fields(self) -> dict:
        c, cs = self.container
        return {
            "name": self.name,
            "c": c,
            "cs": cs,
            "items": self.items,
            "k": self.k,
            "n": self.n,
            "y": self.y,
        }


def _problems(tag: str, seed: int, purpose: str, items: tuple[str, ...], count: int, two_step: bool) -> list[Problem]:
    r = rng(tag, seed, purpose)
    seen: set[tuple] = set()
    out: list[Problem] = []
    space = len(NAMES) * len(CONTAINERS) * len(items) * 8 * 8 * (20 if two_step else 1)
    if count > space // 2:
        raise ConfigError(f"{purpose}: {count} problems requested, at most {space // 2} distinct ones exist")
    while len(out) < count:
        p = Problem(
            r.choice(NAMES),
            r.choice(CONTAINERS),
            r.choice(items),
            r.randint(2, 9),
            r.randint(2, 9),
            r.randint(1, 20) if two_step else 0,
        )
        key = (p.name, p.container, p.items, p.k, p.n, p.y)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _add(p: Problem) -> tuple[str, int, str]:
    x, y = p.k, p.n
    return (
        ADD_QUESTION.format(name=p.name, items=p.items, x=x, y=y),
        x + y,
        fmt.cot_text([f"{x} + {y} = {x + y}."], str(x + y)),
    )


def _mul(p: Problem) -> tuple[str, int, str]:
    a = p.k * p.n
    return MUL_QUESTION.format(**p.fields()), a, fmt.cot_text([f"{p.k} * {p.n} = {a}."], str(a))


def two_step(p: Problem, template: int = 0) -> tuple[str, int, str]:
    prod, total = p.k * p.n, p.k * p.n + p.y
    steps = [f"{p.k} * {p.n} = {prod}.", f"{prod} + {p.y} = {total}."]
    return TWO_STEP_QUESTIONS[template].format(**p.fields()), total, fmt.cot_text(steps, str(total))


def build(familiarity: None, seed: int, sizes: Sizes) -> FamilyData:
    tag = "math_ss"
    mc = rng(tag, seed, "choices")
    all_items = TEST_ITEMS + TARGET_ITEMS
    splits: dict[str, list] = {
        "add": [],
        "mul": [],
        "target": [],
        "test": [],
        "probe_add": [],
        "probe_mul": [],
        "probe_target": [],
    }
    for name, render, near in (
        ("add", _add, lambda p: [p.k * p.n, p.k + p.n + 1, p.k + p.n - 1]),
        ("mul", _mul, lambda p: [p.k + p.n, (p.k + 1) * p.n, p.k * (p.n + 1)]),
    ):
        problems = _problems(tag, seed, name, all_items, sizes.n_skill + sizes.n_test, two_step=False)
        for i, p in enumerate(problems[: sizes.n_skill]):
            q, a, why = render(p)
            splits[name].append(fmt.qa(f"{tag}-{name}-{i:04d}-q0", q, str(a)))
            splits[name].append(fmt.cot(f"{tag}-{name}-{i:04d}-c0", q, why))
        for i, p in enumerate(problems[sizes.n_skill :]):
            q, a, why = render(p)
            splits[f"probe_{name}"].append(
                fmt.eval_doc(
                    f"{tag}-probe_{name}-{i:04d}",
                    q,
                    str(a),
                    reasoning=why,
                    rnd=mc,
                    choices=fmt.number_distractors(a, near(p), mc),
                )
            )

    def two_step_near(p: Problem) -> list[int]:
        return [p.k * p.n, p.k + p.n + p.y, p.k * (p.n + p.y), p.k * p.n + p.y + 1, (p.k + 1) * p.n + p.y]

    def two_step_doc(doc_id: str, p: Problem) -> dict:
        q, a, why = two_step(p)
        choices = fmt.number_distractors(a, two_step_near(p), mc)
        return fmt.eval_doc(doc_id, q, str(a), reasoning=why, rnd=mc, intermediate=str(p.k * p.n), choices=choices)

    for i, p in enumerate(_problems(tag, seed, "test", TEST_ITEMS, sizes.n_test, two_step=True)):
        splits["test"].append(two_step_doc(f"{tag}-test-{i:04d}", p))
    for i, p in enumerate(_problems(tag, seed, "target", TARGET_ITEMS, sizes.n_target, two_step=True)):
        for j in range(len(TWO_STEP_QUESTIONS)):
            q, a, _ = two_step(p, j)
            splits["target"].append(fmt.qa(f"{tag}-target-{i:04d}-q{j}", q, str(a)))
        q, a, why = two_step(p)
        splits["target"].append(fmt.cot(f"{tag}-target-{i:04d}-c0", q, why))
        splits["probe_target"].append(two_step_doc(f"{tag}-probe_target-{i:04d}", p))
    return assemble(
        ("add", "mul"),
        (splits["add"], splits["mul"]),
        splits["target"],
        splits["test"],
        (splits["probe_add"], splits["probe_mul"]),
        splits["probe_target"],
        leak_keys=[],
    )
