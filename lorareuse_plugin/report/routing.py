"""Router accuracy: how often a request router sent a document where the oracle would have.

The oracle route of a task of ours is the expert trained for it (``reuse.oracle``): a probe of hop1
to hop1, the composed test to ``target``. A router scores 1 on a document when it chose exactly that
expert; rows whose chosen experts include no right one for a task (``hop1+hop2`` on the composed
test) have no oracle route and are left out. ``random_route``'s accuracy is the floor (1/#experts).
"""

from __future__ import annotations

from lorareuse_plugin.stats import Proportion

ROUTERS = ("seq_arrow", "random_route")  # request routers whose choice the oracle can grade


def router_accuracy(rows: list[dict]) -> list[dict]:
    """One record per (library, seed, entry, task) of a request router with an oracle route."""
    from lorareuse_plugin.reuse.oracle import Params, expert_for_task

    out = []
    for r in rows:
        if r["method"] not in ROUTERS or r["family"] == "-":
            continue
        experts = tuple(r["experts"].split("+"))
        right = expert_for_task(r["task"], experts, Params())
        routes = r["items"].routes
        if right is None or not routes or any(x is None for x in routes):
            continue
        hits = sum(x == right for x in routes)
        out.append(
            {
                "library": r["library"],
                "seed": r["seed"],
                "entry": r["entry"],
                "task": r["task"],
                "oracle_route": right,
                "n": len(routes),
                "accuracy": round(hits / len(routes), 4),
                "ci95": [round(x, 4) for x in Proportion(hits, len(routes)).interval],
                "chance": round(1 / len(experts), 4),
            }
        )
    return out


def to_markdown(records: list[dict]) -> str:
    if not records:
        return ""
    lines = [
        "### Router accuracy (route chosen = oracle route)",
        "",
        "| library | seed | entry | task | oracle route | n | accuracy [95% CI] | uniform guess |",
        "|---|---:|---|---|---|---:|---|---:|",
    ]
    for a in records:
        lo, hi = a["ci95"]
        lines.append(
            f"| {a['library']} | {a['seed']} | {a['entry']} | {a['task'].removeprefix('lorareuse_')} | "
            f"{a['oracle_route']} | {a['n']} | {a['accuracy']:.2f} [{lo:.2f}, {hi:.2f}] | {a['chance']:.2f} |"
        )
    return "\n".join(lines) + "\n"
