"""Request routing shared by the backends: bucket requests by adapter, serve each bucket with
lm-eval's own code path, and record which adapter answered each document."""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict
from typing import Any


def _asking(request, args):
    """A copy of an lm-eval request with other arguments (a new context or generation settings)."""
    import copy

    clone = copy.copy(request)
    clone.arguments = args
    return clone


def _first_of_each_doc(requests, indices=None) -> dict[tuple, int]:
    """(task, doc) -> the index of its first request among ``indices`` (default: all): one decision per
    document, as a multiple-choice document has a request per choice."""
    first: dict[tuple, int] = {}
    for i in range(len(requests)) if indices is None else indices:
        first.setdefault((requests[i].task_name, requests[i].doc_id), i)
    return first


class RoutedMixin:
    """Backends set ``BACKEND``, ``reuse_spec``, ``route_log = {}``, ``_extra_info`` and ``_router``
    (None when one adapter serves everything, labelled ``_served``; else the routing method's
    ``request_router``, see ``reuse.router``) and implement ``_serving(adapter)`` and
    ``_load_mixture(name, path)``. Listed before the lm-eval class, so the three
    request methods below wrap lm-eval's own."""

    BACKEND: str
    route_log: dict[tuple[str, int], str]
    _router: Any
    _served: str
    _extra_info: dict[str, Any]

    def _load_mixture(self, name: str, path) -> None:  # pragma: no cover - abstract
        """Make the merged adapter at ``path`` servable as ``name``."""
        raise NotImplementedError

    def _mixture(self, experts: tuple[str, ...], weights: tuple[float, ...]) -> str:
        """The adapter name serving the delta mean of ``experts`` (seq_arrow top-k), merged and
        loaded once per (experts, weights)."""
        mixtures = self.__dict__.setdefault("_mixtures", {})
        if (experts, weights) not in mixtures:
            from lorareuse_plugin.reuse.merge import merged_adapter
            from lorareuse_plugin.reuse.spec import parse_spec

            spec = parse_spec(self.reuse_spec.library, "delta_mean", list(experts), list(weights))  # type: ignore[attr-defined]
            name = f"mix_{spec.key[:10]}"
            self._load_mixture(name, merged_adapter(spec))
            mixtures[(experts, weights)] = name
        return mixtures[(experts, weights)]

    def _serving(self, adapter: str | None) -> contextlib.AbstractContextManager:  # pragma: no cover - abstract
        raise NotImplementedError

    def _routes(self, requests) -> list[tuple[str | None, str]]:
        """(adapter or None for the base, label for the route log) per request, as the router says."""
        from lorareuse_plugin.reuse.router import RouteItem

        # one decision per document: a multiple-choice document whose contexts differ per choice is
        # routed by its first request's context, so all its log-likelihoods come from one model
        first: dict[tuple, str] = {}
        for r in requests:
            first.setdefault((r.task_name, r.doc_id), r.args[0])
        items = [RouteItem(r.task_name or "", r.doc_id, first[(r.task_name, r.doc_id)]) for r in requests]
        out: list[tuple[str | None, str]] = []
        for route in self._router.routes(items):  # type: ignore[union-attr]
            if not route.experts:
                out.append((None, route.label))
            elif len(route.experts) == 1:
                out.append((route.experts[0], route.label))
            else:
                out.append((self._mixture(route.experts, route.weights), route.label))
        return out

    def _log_routes(self, requests) -> list[str | None]:
        routes = self._routes(requests)
        for r, (_, label) in zip(requests, routes, strict=True):
            self.route_log[(r.task_name, r.doc_id)] = label
        return [adapter for adapter, _ in routes]

    def _dispatch(self, requests, call):
        if getattr(self, "_chain", False):
            return self._chain_dispatch(requests, call)
        if getattr(self, "_selector", None) is not None:
            return self._rescore_dispatch(requests, call)
        if self._router is None:
            for r in requests:
                self.route_log[(r.task_name, r.doc_id)] = self._served
            return call(requests)
        groups: dict[str | None, list[int]] = defaultdict(list)
        for i, adapter in enumerate(self._log_routes(requests)):
            groups[adapter].append(i)
        out: list[Any] = [None] * len(requests)
        for adapter in sorted(groups, key=lambda a: (a is not None, a or "")):  # base alone, never mixed
            idx = groups[adapter]
            with self._serving(adapter):
                results = call([requests[i] for i in idx])
            for i, res in zip(idx, results, strict=True):
                out[i] = res
        return out

    def _chain_dispatch(self, requests, call):
        """``chain``: a member's own question to that member; a composed one in two steps — the first
        expert's greedy one-line answer, then ``call`` (generation or log-likelihood) on the second
        expert with that answer in the second question. One first step per document."""
        from lorareuse_plugin.reuse.chain import FIRST_STEP_GEN, plan

        spec = self.reuse_spec  # type: ignore[attr-defined]
        family = spec.library.manifest["data"]["family"]
        first_expert, second_expert = spec.experts
        generation = bool(requests) and isinstance(requests[0].args[1], dict)
        plans = [plan(family, r.args[0], r.task_name or "") for r in requests]
        out: list[Any] = [None] * len(requests)
        for member, expert in enumerate(spec.experts):
            idx = [i for i, p in enumerate(plans) if p.member == member]
            if idx:
                with self._serving(expert):
                    for i, res in zip(idx, call([requests[i] for i in idx]), strict=True):
                        out[i] = res
                for i in idx:
                    self.route_log[(requests[i].task_name, requests[i].doc_id)] = expert
        chained = [i for i, p in enumerate(plans) if p.member is None]
        if not chained:
            return out
        docs = _first_of_each_doc(requests, chained)  # one first step per document
        with self._serving(first_expert):
            firsts = super().generate_until(  # type: ignore[misc]  # the backend's own lm-eval generation
                [_asking(requests[i], (plans[i].first_context(), dict(FIRST_STEP_GEN))) for i in docs.values()],
                disable_tqdm=True,
            )
        first_of = {doc: a for doc, a in zip(docs, firsts, strict=True)}
        second = []
        for i in chained:
            a1 = first_of[(requests[i].task_name, requests[i].doc_id)]
            second.append(_asking(requests[i], (plans[i].second_context(a1), *requests[i].args[1:])))
        with self._serving(second_expert):
            results = call(second)
        for i, res in zip(chained, results, strict=True):
            key = (requests[i].task_name, requests[i].doc_id)
            out[i] = plans[i].answer(first_of[key], res) if generation else res
            self.route_log[key] = f"{first_expert}->{second_expert}"
        return out

    def _rescore_dispatch(self, requests, call):
        """``rescore``: every candidate (each expert, then their delta mean) answers, the rescorer picks
        one per document. Generation: its answer is served. Log-likelihood: each candidate's greedy
        one-line answer to the document's context is rescored, and the picked candidate scores it."""
        from lorareuse_plugin.data.decompose import question_of
        from lorareuse_plugin.reuse.chain import FIRST_STEP_GEN
        from lorareuse_plugin.reuse.rescore import candidates, label

        spec = self.reuse_spec  # type: ignore[attr-defined]
        cands = candidates(spec.experts)
        adapters = [c[0] if len(c) == 1 else self._mixture(c, tuple(1.0 for _ in c)) for c in cands]
        generation = bool(requests) and isinstance(requests[0].args[1], dict)
        docs = _first_of_each_doc(requests)  # one decision per document: its first request
        if generation:
            asked = requests
        else:
            asked = [_asking(requests[i], (requests[i].args[0], dict(FIRST_STEP_GEN))) for i in docs.values()]
        answers = []
        for adapter in adapters:
            with self._serving(adapter):
                answers.append(super().generate_until(asked, disable_tqdm=True) if not generation else call(asked))  # type: ignore[misc]
        first = list(docs.values()) if not generation else list(range(len(requests)))
        choice: dict[tuple, int] = {}
        for j, i in enumerate(first):
            r = requests[i]
            choice[(r.task_name, r.doc_id)] = self._selector.pick(question_of(r.args[0]), [a[j] for a in answers])  # type: ignore[attr-defined]
        for (task, doc), c in choice.items():
            self.route_log[(task, doc)] = label(cands[c])
        stats = self._extra_info.setdefault("rescore", {"requests": 0, "candidate_generations": 0})
        stats["requests"] += len(first)
        stats["candidate_generations"] += len(first) * len(cands)
        stats["rescorer_passes"] = self._selector.passes  # type: ignore[attr-defined]
        stats["score"] = self._selector.score  # type: ignore[attr-defined]
        if generation:
            return [answers[choice[(r.task_name, r.doc_id)]][i] for i, r in enumerate(requests)]
        out: list = [None] * len(requests)
        for c, adapter in enumerate(adapters):
            idx = [i for i, r in enumerate(requests) if choice[(r.task_name, r.doc_id)] == c]
            if idx:
                with self._serving(adapter):
                    for i, res in zip(idx, call([requests[i] for i in idx]), strict=True):
                        out[i] = res
        return out

    def set_cache_hook(self, cache_hook) -> None:
        """lm-eval's cache (``--use_cache``, ``simple_evaluate(use_cache=…)``) keys requests by their
        text alone: two specs — or one spec before and after a bug fix — would share answers. The
        cache moves to a table named by the spec's key (which holds the method's code hash), from
        Python as from our CLI."""
        db = getattr(cache_hook, "dbdict", None)
        if db is not None and hasattr(db, "tablename") and hasattr(db, "conn"):
            table = f"lorareuse_{self.reuse_spec.key[:16]}"  # type: ignore[attr-defined]
            db.conn.execute(f'CREATE TABLE IF NOT EXISTS "{table}" (key TEXT PRIMARY KEY, value BLOB)')
            db.conn.commit()
            db.tablename = table
        super().set_cache_hook(cache_hook)  # type: ignore[misc]

    def served_by(self) -> dict[str, dict[str, int]]:
        summary: dict[str, Counter] = defaultdict(Counter)
        for (task, _), label in self.route_log.items():
            summary[task][label] += 1
        return {t: dict(c) for t, c in sorted(summary.items())}

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        return self._dispatch(
            requests, lambda rs: super(RoutedMixin, self).loglikelihood(rs, disable_tqdm=disable_tqdm)
        )

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        parent = super()
        return self._dispatch(requests, lambda rs: parent.loglikelihood_rolling(rs, disable_tqdm=disable_tqdm))

    def generate_until(self, requests, disable_tqdm: bool = False):
        return self._dispatch(
            requests, lambda rs: super(RoutedMixin, self).generate_until(rs, disable_tqdm=disable_tqdm)
        )

    def _contaminated(self) -> list[str]:
        spec = self.reuse_spec  # type: ignore[attr-defined]
        return sorted(n for n in spec.experts if spec.library.contaminated(n))

    def get_model_info(self) -> dict:
        parent = super()
        info = parent.get_model_info() if hasattr(parent, "get_model_info") else {}
        spec = self.reuse_spec  # type: ignore[attr-defined]
        info["lorareuse"] = {
            "backend": self.BACKEND,
            "spec": self.reuse_spec.to_json(),  # type: ignore[attr-defined]
            "served_by": self.served_by(),
            # an expert trained on the test's own composed facts (``ac``) is contaminated by design
            "contaminated_experts": self._contaminated(),
            # where every served adapter came from, and which bytes: a results file names its sources
            "adapters": {
                e: {
                    "path": str(spec.library.expert_dir(e)),
                    "weights_sha256": spec.library.adapter(e).weights_sha256,
                    "rank": spec.library.adapter(e).rank,
                    "targets": list(spec.library.adapter(e).targets),
                }
                for e in spec.experts
            },
            **self._extra_info,
        }
        return info
