"""``lorareuse familiarity``: which real facts of our tables a base model demonstrably knows.

For a real pretrained base, "R" (every hop real) and "H" (the second hop real) cannot mean "whatever
is in our tables": a 135 M model says "Japan" for the capital of Japan. Every real fact is probed
the way the probe tasks ask it — each question paraphrase, greedy (strict and flexible extraction,
as the tasks' two filters) and multiple choice (log-likelihood over the answer and three
right-type distractors, as lm-eval's ``acc``). A fact is **known** when the greedy answer is right
(flexible) for a majority of the paraphrases *and* the MC choice is right. The report is one JSON
file per base; which facts R/H test sets may use follows from it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lorareuse_plugin.data import formats as fmt
from lorareuse_plugin.errors import ConfigError

REPORT = "familiarity.json"  # with --chat: familiarity_chat.json
RELATIONS = ("birth_country", "capital", "part_count")


@dataclass(frozen=True)
class FactProbe:
    relation: str  # birth_country | capital | part_count
    subject: str
    answer: str
    questions: tuple[str, ...]  # one per paraphrase
    choices: tuple[str, ...]  # the answer first, then right-type distractors


def fact_probes(limit: int | None = None) -> list[FactProbe]:
    """Every real fact of the tables (the first ``limit`` of each relation), seeded distractors."""
    from lorareuse_plugin.data import math_ks, twohop
    from lorareuse_plugin.world import real_facts
    from lorareuse_plugin.world.seeding import rng

    facts = real_facts()
    r = rng("familiarity", 1)
    countries = [c.name for c in facts.countries]
    capitals = [c.capital for c in facts.countries]
    out: list[FactProbe] = []
    for p in facts.people[:limit]:
        qs = tuple(q.format(a=p.name) for q in twohop.HOP1_QUESTIONS)
        out.append(
            FactProbe(
                "birth_country",
                p.name,
                p.birth_country,
                qs,
                (p.birth_country, *fmt.distractors(countries, p.birth_country, r)),
            )
        )
    for c in facts.countries[:limit]:
        qs = tuple(q.format(b=c.name) for q in twohop.HOP2_QUESTIONS)
        out.append(FactProbe("capital", c.name, c.capital, qs, (c.capital, *fmt.distractors(capitals, c.capital, r))))
    for o in facts.objects[:limit]:
        f = math_ks._know_fields(o)
        qs = tuple(q.format(**f) for q in math_ks.KNOW_QUESTIONS)
        near = fmt.number_distractors(o.count, [o.count + 1, o.count - 1, o.count + 2], r)
        out.append(FactProbe("part_count", o.singular, str(o.count), qs, (str(o.count), *near)))
    return out


def flexible_correct(response: str, answer: str) -> bool:
    """The tasks' ``flexible`` filter: an answer said in a sentence counts."""
    return fmt.is_correct(response, answer, fmt.FLEXIBLE_REGEX)


def probe_prompt(tok, question: str, chat: bool) -> str:
    """The tasks' ``Q: …\nA:`` prompt, or the same text as a user turn of the model's chat template
    (as lm-eval's ``--apply_chat_template`` renders it)."""
    from lorareuse_plugin.base.chat import chat_prompt, has_chat_template

    prompt = fmt.qa_prompt(question)
    if not chat:
        return prompt
    if not has_chat_template(tok):
        raise ConfigError("--chat: this base's tokenizer has no chat template; leave out --chat")
    return chat_prompt(tok, prompt)


def measure(
    model, tok, probes: list[FactProbe], *, chat: bool = False, log: Callable[[str], None] = print
) -> list[dict]:
    """Per fact: greedy answers per paraphrase (strict / flexible), the MC choice, and the verdict."""
    from lorareuse_plugin.base.evaluate import greedy_generate, mc_correct

    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    prompts = [probe_prompt(tok, q, chat) for p in probes for q in p.questions]
    log(f"probing {len(probes)} facts: {len(prompts)} greedy questions, {len(probes)} multiple-choice …")
    responses = iter(greedy_generate(model, tok, prompts))
    mc_docs = [
        {"prompt": probe_prompt(tok, p.questions[0], chat), "choices": list(p.choices), "label": 0} for p in probes
    ]
    mc = mc_correct(model, tok, mc_docs)
    rows = []
    for p, mc_right in zip(probes, mc, strict=True):
        said = [next(responses) for _ in p.questions]
        strict = [fmt.is_correct(s, p.answer) for s in said]
        flexible = [flexible_correct(s, p.answer) for s in said]
        known = sum(flexible) * 2 > len(flexible) and mc_right
        rows.append(
            {
                "relation": p.relation,
                "subject": p.subject,
                "answer": p.answer,
                "greedy": said,
                "strict": strict,
                "flexible": flexible,
                "mc": mc_right,
                "known": known,
            }
        )
    return rows


def summary(rows: list[dict]) -> dict:
    out = {}
    for rel in RELATIONS:
        mine = [r for r in rows if r["relation"] == rel]
        if mine:
            n = len(mine)
            out[rel] = {
                "n": n,
                "known": sum(r["known"] for r in mine),
                "greedy_strict": sum(sum(r["strict"]) for r in mine) / sum(len(r["strict"]) for r in mine),
                "greedy_flexible": sum(sum(r["flexible"]) for r in mine) / sum(len(r["flexible"]) for r in mine),
                "mc": sum(r["mc"] for r in mine) / n,
            }
    return out


def familiarity_report(
    base: str,
    out: str | Path,
    *,
    limit: int | None = None,
    chat: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """Probe every real fact on ``base`` and write ``<out>/familiarity.json`` (atomically)."""
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit {limit}: probe at least 1 fact per relation (or leave it out for all)")
    from lorareuse_plugin.base.resolve import resolve_base
    from lorareuse_plugin.io import write_bytes_atomic

    ref = resolve_base(base, progress=False)
    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file: pass a directory")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ref.name_or_path)
    model = AutoModelForCausalLM.from_pretrained(ref.name_or_path, dtype=torch.float32).eval()
    rows = measure(model, tok, fact_probes(limit), chat=chat, log=log)
    report = {
        "base": ref.to_json(),
        "prompt": "chat template" if chat else "Q: …\\nA:",
        "rule": "known = flexible greedy right on most paraphrases and MC right",
        "summary": summary(rows),
        "facts": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out / report_name(chat), (json.dumps(report, indent=1) + "\n").encode())
    return report


def report_name(chat: bool) -> str:
    return "familiarity_chat.json" if chat else REPORT


def format_summary(report: dict) -> str:
    lines = ["| relation | facts | known | greedy strict | greedy flexible | MC |", "|---|---:|---:|---:|---:|---:|"]
    for rel, s in report["summary"].items():
        lines.append(
            f"| {rel} | {s['n']} | {s['known']} ({s['known'] / s['n']:.0%}) | {s['greedy_strict']:.2f} | "
            f"{s['greedy_flexible']:.2f} | {s['mc']:.2f} |"
        )
    return "\n".join(lines)
