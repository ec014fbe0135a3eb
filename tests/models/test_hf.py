"""``lorareuse-hf`` through real lm-eval runs on the test base and a real tiny PEFT library."""

import json
import shutil

import pytest

import lorareuse_plugin
from lorareuse_plugin.errors import ConfigError, LibraryError

from ..conftest import tiny_task_metadata

TASKS = ["lorareuse_hop1_f", "lorareuse_twohop_f_mc"]


@pytest.fixture(scope="module")
def task_manager():
    from lm_eval.tasks import TaskManager

    return TaskManager(
        include_path=str(lorareuse_plugin.TASKS_DIR), include_defaults=False, metadata=tiny_task_metadata()
    )


def _run(task_manager, model, model_args, tasks=TASKS):
    from lm_eval import simple_evaluate

    from lorareuse_plugin.models import register_models

    register_models()
    return simple_evaluate(
        model=model,
        model_args={"dtype": "float32", **model_args},
        tasks=tasks,
        task_manager=task_manager,
        batch_size=8,
        device="cpu",
        bootstrap_iters=0,
    )


def _resps(out, task):
    return [s["resps"] for s in sorted(out["samples"][task], key=lambda s: s["doc_id"])]


def _docs(out: dict, task: str) -> int:
    """Documents of a task in a run (lm-eval logs one sample per document *and filter*)."""
    return len({s["doc_id"] for s in out["samples"][task]})


def _close(a, b, tol=1e-4):
    for ra, rb in zip(a, b, strict=True):
        for x, y in zip(ra, rb, strict=True):
            if isinstance(x[0], str):
                assert x == y
            else:
                assert abs(x[0][0] - y[0][0]) < tol


def test_single_expert_equals_stock_lm_eval_hf_with_peft(task_manager, tiny_library, test_base):
    ours = _run(task_manager, "lorareuse-hf", {"library": str(tiny_library), "method": "single:hop1"})
    stock = _run(task_manager, "hf", {"pretrained": str(test_base), "peft": str(tiny_library / "experts" / "hop1")})
    for task in TASKS:
        _close(_resps(ours, task), _resps(stock, task))
    # the union control's CoT and in-context forms too: any expert is a plain PEFT dir
    tasks = ["lorareuse_twohop_f_cot", "lorareuse_twohop_f_ctx", "lorareuse_twohop_f_ctx_mc"]
    ours_u = _run(task_manager, "lorareuse-hf", {"library": str(tiny_library), "method": "single:union"}, tasks)
    stock_u = _run(
        task_manager, "hf", {"pretrained": str(test_base), "peft": str(tiny_library / "experts" / "union")}, tasks
    )
    for task in tasks:
        _close(_resps(ours_u, task), _resps(stock_u, task))
        assert ours_u["results"][task] == stock_u["results"][task]
    info = ours["config"]["lorareuse"]
    assert info["spec"]["method"] == "single" and info["spec"]["experts"] == ["hop1"]
    manifest_sha = info["spec"]["manifest_sha256"]
    from lorareuse_plugin.library.manifest import load_library

    assert manifest_sha == load_library(tiny_library).identity_sha256
    assert info["adapter_check_max_dlogit"] > 0


@pytest.mark.parametrize(
    "method,extra",
    [
        ("oracle", {"routes": "lorareuse_hop1_f:hop1|lorareuse_twohop_f_mc:hop1"}),
        ("seq_arrow", {}),
        ("random_route", {"seed": "5"}),
    ],
)
def test_routed_equals_single_when_the_router_is_forced(task_manager, tiny_library, method, extra):
    experts = "hop1+hop2" if method == "oracle" else "hop1"  # one expert: the router has no choice
    routed = _run(
        task_manager, "lorareuse-hf", {"library": str(tiny_library), "method": method, "experts": experts, **extra}
    )
    single = _run(task_manager, "lorareuse-hf", {"library": str(tiny_library), "method": "single:hop1"})
    for task in TASKS:
        _close(_resps(routed, task), _resps(single, task))
    served = routed["config"]["lorareuse"]["served_by"]
    assert served == {t: {"hop1": _docs(routed, t)} for t in TASKS}
    sources = routed["config"]["lorareuse"]["adapters"]  # the results name every adapter's dir and bytes
    manifest = json.loads((tiny_library / "manifest.json").read_text())
    assert set(sources) == set(experts.split("+"))
    for e, src in sources.items():
        assert src["path"].endswith(f"experts/{e}") and src["weights_sha256"] == manifest["experts"][e]["weights_hash"]


def test_random_route_serves_each_document_the_expert_its_seed_picks(task_manager, tiny_library):
    """The route log is the pure function of (seed, task, document) — reproducible, batching-free —
    and each document's answer is that expert's own answer."""
    from lorareuse_plugin.reuse.random_route import pick

    experts = ("hop1", "hop2")
    args = {"library": str(tiny_library), "method": "random_route", "experts": "+".join(experts), "seed": "1"}
    routed = _run(task_manager, "lorareuse-hf", args)
    alone = {
        e: _run(task_manager, "lorareuse-hf", {"library": str(tiny_library), "method": f"single:{e}"}) for e in experts
    }
    seen = set()
    for task in TASKS:
        for sample in routed["samples"][task]:
            chosen = experts[pick(1, task, sample["doc_id"], 2)]
            seen.add(chosen)
            same = next(s for s in alone[chosen]["samples"][task] if s["doc_id"] == sample["doc_id"])
            _close([sample["resps"]], [same["resps"]])
    assert seen == set(experts)
    counts = routed["config"]["lorareuse"]["served_by"]
    assert sum(sum(c.values()) for c in counts.values()) == sum(_docs(routed, t) for t in TASKS)


def test_chain_answers_what_the_explicit_decomposition_answers(task_manager, tiny_library, test_base):
    """chain through lm-eval equals the decomposition computed apart (the library control's code, on
    a PEFT model holding both experts): hop1's greedy answer put into hop2's question, hop2's answer
    (CoT: the worked chain around it); probes go to their own member; MC scores under hop2."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lorareuse_plugin.library.controls import decomposition_answers

    tasks = ["lorareuse_twohop_f", "lorareuse_twohop_f_cot", "lorareuse_hop1_f", "lorareuse_twohop_f_mc"]
    out = _run(
        task_manager, "lorareuse-hf", {"library": str(tiny_library), "method": "chain", "experts": "hop1+hop2"}, tasks
    )
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(test_base), str(tiny_library / "experts/hop1"), adapter_name="hop1"
    )
    model.load_adapter(str(tiny_library / "experts/hop2"), adapter_name="hop2")
    tok = AutoTokenizer.from_pretrained(test_base)
    docs = {s["doc_id"]: s["doc"] for s in out["samples"]["lorareuse_twohop_f"]}
    expected = dict(zip(docs, decomposition_answers(model.eval(), tok, "twohop", list(docs.values())), strict=True))
    for s in out["samples"]["lorareuse_twohop_f"]:
        assert s["resps"][0][0].split("\n")[0].strip() == expected[s["doc_id"]]
    for s in out["samples"]["lorareuse_twohop_f_cot"]:
        assert s["resps"][0][0].strip().endswith(f"So the answer is {expected[s['doc_id']]}.")
    served = out["config"]["lorareuse"]["served_by"]
    assert served["lorareuse_hop1_f"] == {"hop1": _docs(out, "lorareuse_hop1_f")}
    for task in ("lorareuse_twohop_f", "lorareuse_twohop_f_cot", "lorareuse_twohop_f_mc"):
        assert served[task] == {"hop1->hop2": _docs(out, task)}
    hop1 = _run(
        task_manager, "lorareuse-hf", {"library": str(tiny_library), "method": "single:hop1"}, ["lorareuse_hop1_f"]
    )
    _close(_resps(out, "lorareuse_hop1_f"), _resps(hop1, "lorareuse_hop1_f"))


def test_ensemble_of_one_expert_or_of_identical_experts_is_that_expert(task_manager, tiny_library, test_base):
    """The output mixture Σ w_i p_i: of one expert it is that expert (log-likelihoods to 1e-5, the same
    greedy answers); of two copies of one expert, too."""
    tasks = ["lorareuse_twohop_f", "lorareuse_twohop_f_mc"]
    single = _run(task_manager, "lorareuse-hf", {"library": str(tiny_library), "method": "single:hop2"}, tasks)
    one = _run(
        task_manager, "lorareuse-hf", {"library": str(tiny_library), "method": "ensemble", "experts": "hop2"}, tasks
    )
    hop2 = tiny_library / "experts" / "hop2"
    twins = _run(
        task_manager,
        "lorareuse-hf",
        {"pretrained": str(test_base), "adapters": f"a:{hop2}+b:{hop2}", "method": "ensemble", "weights": "0.3+0.7"},
        tasks,
    )
    for out in (one, twins):
        for task in tasks:
            _close(_resps(out, task), _resps(single, task), tol=1e-5)
    assert one["config"]["lorareuse"]["served_by"]["lorareuse_twohop_f"] == {"ensemble[hop2]": 4}


def test_oracle_routes_each_task_to_its_own_expert(task_manager, tiny_library):
    out = _run(
        task_manager,
        "lorareuse-hf",
        {"library": str(tiny_library), "method": "oracle", "experts": "hop1+hop2"},
        tasks=["lorareuse_hop1_f", "lorareuse_hop2_f", "lorareuse_twohop_f"],
    )
    served = out["config"]["lorareuse"]["served_by"]
    assert set(served["lorareuse_hop1_f"]) == {"hop1"}
    assert set(served["lorareuse_hop2_f"]) == {"hop2"}
    assert set(served["lorareuse_twohop_f"]) == {"base"}  # no target expert chosen: nothing to route to


def test_arrow_with_one_expert_and_top_k_1_equals_that_expert(tiny_library, test_base):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from lorareuse_plugin.reuse import arrow
    from lorareuse_plugin.reuse.spec import parse_spec

    ids = torch.tensor([[1, 40, 41, 42, 43, 44]])
    spec = parse_spec(tiny_library, "arrow", "hop2", top_k=1)
    with torch.no_grad():
        routed = arrow.build(AutoModelForCausalLM.from_pretrained(test_base), spec)(input_ids=ids).logits
        expert = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(test_base), str(tiny_library / "experts" / "hop2")
        )(input_ids=ids).logits
    assert float((routed - expert).abs().max()) < 1e-5


def test_averaged_spec_is_merged_and_reported(task_manager, tiny_library):
    out = _run(
        task_manager, "lorareuse-hf", {"library": str(tiny_library), "method": "svd", "experts": "hop1+hop2", "rank": 8}
    )
    info = out["config"]["lorareuse"]
    assert info["spec"]["params"] == {"rank": 8} and info["merge_stats"]["exact"] is True
    assert info["served_by"] == {t: {"svd[hop1+hop2](rank=8)": _docs(out, t)} for t in TASKS}


def test_adapter_check_fires_on_an_all_zero_adapter(tiny_library, tmp_path, test_base):
    import torch
    from safetensors.torch import load_file, save_file

    from lorareuse_plugin.library.manifest import adapter_hashes
    from lorareuse_plugin.models.hf import LorareuseHFLM

    lib = tmp_path / "lib"
    shutil.copytree(tiny_library, lib)
    weights = lib / "experts" / "hop1" / "adapter_model.safetensors"
    zeroed = {k: torch.zeros_like(v) if "lora_B" in k else v for k, v in load_file(str(weights)).items()}
    save_file(zeroed, str(weights))
    manifest = json.loads((lib / "manifest.json").read_text())
    files = adapter_hashes(weights.parent)
    manifest["experts"]["hop1"]["files"] = files
    manifest["experts"]["hop1"]["weights_hash"] = files["adapter_model.safetensors"]
    (lib / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(LibraryError, match="did not change the model's output"):
        LorareuseHFLM(library=str(lib), method="single:hop1", device="cpu", dtype="float32")


@pytest.mark.parametrize(
    "args,error,needle",
    [
        ({"method": "mean"}, ConfigError, "unknown method 'mean'"),
        ({"method": "delta_mean", "experts": "hop1+hop9"}, ConfigError, "hop9 not in library"),
        ({"method": "seq_arrow", "experts": "hop1+hop2", "top_k": "0"}, ConfigError, "top_k=0 is invalid"),
        ({"method": "arrow", "experts": "hop1+hop2", "top_k": "3"}, ConfigError, "top_k=3 is invalid for 2 experts"),
        ({"method": "delta_mean", "top_k": "2"}, ConfigError, "has no parameter top_k"),
        ({"method": "ties", "density": "2"}, ConfigError, "density=2.0 is invalid"),
        ({"method": "delta_mean", "weights": "0.5"}, ConfigError, "1 weights for 2 experts"),
        ({}, ConfigError, "needs library="),
    ],
)
def test_bad_model_args_fail_before_loading(tiny_library, args, error, needle):
    from lorareuse_plugin.models.hf import LorareuseHFLM

    kwargs = {"library": str(tiny_library), **args} if args else {}
    with pytest.raises(error, match=needle) as err:
        LorareuseHFLM(device="cpu", **kwargs)
    assert "\n" not in str(err.value)


def test_ranks_come_from_the_weights_not_the_manifest(tiny_library, tmp_path):
    """A manifest that says hop2 has rank 2 is not believed: the weights say 4, so svd's rank limit is 4 + 4."""
    from lorareuse_plugin.reuse.spec import parse_spec

    lib = tmp_path / "lib"
    shutil.copytree(tiny_library, lib)
    manifest = json.loads((lib / "manifest.json").read_text())
    manifest["experts"]["hop2"]["rank"] = 2
    (lib / "manifest.json").write_text(json.dumps(manifest))
    assert parse_spec(lib, "svd", "hop1+hop2", rank=8).library.adapter("hop2").rank == 4
    with pytest.raises(ConfigError, match=r"rank=9 is invalid .*total rank 8"):
        parse_spec(lib, "svd", "hop1+hop2", rank=9)


def test_library_for_another_base_is_refused(tiny_library, tmp_path, test_base):
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    from lorareuse_plugin.models.hf import LorareuseHFLM

    other = tmp_path / "other"
    cfg = LlamaConfig.from_pretrained(test_base)
    cfg.num_hidden_layers = 1
    AutoModelForCausalLM.from_config(cfg).save_pretrained(other)
    AutoTokenizer.from_pretrained(test_base).save_pretrained(other)
    with pytest.raises(ConfigError, match="library was built for base"):
        LorareuseHFLM(pretrained=str(other), library=str(tiny_library), method="delta_mean", device="cpu")


def test_task_world_must_match_the_library(tiny_library):
    from lm_eval.tasks import TaskManager

    tm = TaskManager(
        include_path=str(lorareuse_plugin.TASKS_DIR), include_defaults=False, metadata={"library": str(tiny_library)}
    )  # default world: n_test 30, library: 4
    with pytest.raises(ConfigError, match="trained on another twohop_f world"):
        list(tm.load(["lorareuse_hop1_f"])["tasks"]["lorareuse_hop1_f"].test_docs())


def test_routed_buckets_are_served_merged_and_the_base_comes_back_bit_for_bit(tiny_library, test_base):
    import torch
    from peft.tuners.lora import LoraLayer
    from transformers import AutoModelForCausalLM

    from lorareuse_plugin.models.hf import LorareuseHFLM
    from lorareuse_plugin.models.parity import probe_requests

    args = {"library": str(tiny_library), "dtype": "float32", "device": "cpu", "batch_size": 8}
    lm = LorareuseHFLM(method="oracle", experts="hop1+hop2+target", **args)
    _, gen = probe_requests(lm.reuse_spec, per_task=3)
    got = lm.generate_until(gen, disable_tqdm=True)
    routes = [lm.route_log[(r.task_name, r.doc_id)] for r in gen]
    assert {"hop1", "hop2", "target"} <= set(routes)
    base = AutoModelForCausalLM.from_pretrained(test_base, dtype=torch.float32).state_dict()
    layers = [(n, m) for n, m in lm._model.named_modules() if isinstance(m, LoraLayer)]
    assert layers and not any(m.merged_adapters for _, m in layers)
    for name, m in layers:
        key = name.removeprefix("base_model.model.") + ".weight"
        assert torch.equal(m.get_base_layer().weight, base[key]), key
    for expert in ("hop1", "hop2", "target"):  # each bucket = that expert merged alone
        alone = LorareuseHFLM(method=f"single:{expert}", **args).generate_until(gen, disable_tqdm=True)
        assert [a for a, r in zip(alone, routes, strict=True) if r == expert] == [
            g for g, r in zip(got, routes, strict=True) if r == expert
        ]


def test_a_routed_expert_with_fewer_targets_gets_no_other_experts_lora(tiny_library, test_base, tmp_path):
    """hop1 adapts q_proj only, the other experts every projection: served routed, hop1's bucket must
    equal hop1 alone. Before the fix the last loaded expert stayed active and PEFT added its LoRA on
    every layer hop1 does not adapt (silently wrong results)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from lorareuse_plugin.library.manifest import adapter_hashes
    from lorareuse_plugin.models.hf import LorareuseHFLM
    from lorareuse_plugin.models.parity import probe_requests

    lib = tmp_path / "lib"
    shutil.copytree(tiny_library, lib)
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(test_base, dtype=torch.float32)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"], init_lora_weights=False)
    shutil.rmtree(lib / "experts" / "hop1")
    get_peft_model(base, lora).save_pretrained(lib / "experts" / "hop1")
    manifest = json.loads((lib / "manifest.json").read_text())
    files = adapter_hashes(lib / "experts" / "hop1")
    manifest["experts"]["hop1"].update(targets=["q_proj"], files=files, weights_hash=files["adapter_model.safetensors"])
    (lib / "manifest.json").write_text(json.dumps(manifest))

    args = {"library": str(lib), "dtype": "float32", "device": "cpu", "batch_size": 8}
    routed = LorareuseHFLM(method="oracle", experts="hop1+hop2+target", **args)
    ll, _ = probe_requests(routed.reuse_spec, per_task=4)
    mine = [r for r in ll if r.task_name == "lorareuse_hop1_f"]
    got = [lp for lp, _ in routed.loglikelihood(mine, disable_tqdm=True)]
    assert {routed.route_log[(r.task_name, r.doc_id)] for r in mine} == {"hop1"}
    alone = [lp for lp, _ in LorareuseHFLM(method="single:hop1", **args).loglikelihood(mine, disable_tqdm=True)]
    assert max(abs(a - b) for a, b in zip(got, alone, strict=True)) < 1e-4, (got, alone)


def test_use_cache_from_python_is_keyed_by_the_spec(task_manager, tiny_library, tmp_path):
    """``simple_evaluate(use_cache=…)`` (not our CLI): a second spec on the same db is answered by its own
    model, never from the first spec's cached answers; the same spec again is served from the cache."""
    from lm_eval import simple_evaluate

    from lorareuse_plugin.models import register_models

    register_models()

    def run(method: str, cache: str | None):
        return simple_evaluate(
            model="lorareuse-hf",
            model_args={"dtype": "float32", "library": str(tiny_library), "method": method},
            tasks=["lorareuse_twohop_f_mc"],
            task_manager=task_manager,
            batch_size=8,
            device="cpu",
            bootstrap_iters=0,
            use_cache=cache,
        )

    db = str(tmp_path / "lm_cache")
    first = run("single:hop1", db)
    fresh = run("single:hop2", None)
    cached = run("single:hop2", db)  # same db, another spec
    assert _resps(first, "lorareuse_twohop_f_mc") != _resps(fresh, "lorareuse_twohop_f_mc")
    _close(_resps(cached, "lorareuse_twohop_f_mc"), _resps(fresh, "lorareuse_twohop_f_mc"), tol=1e-6)
    import sqlite3

    with sqlite3.connect(next(tmp_path.glob("lm_cache*.db"))) as con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert len({t for t in tables if t.startswith("lorareuse_")}) == 2


def test_simple_evaluate_without_a_device_runs_where_torch_can(tiny_library, task_manager):
    """From Python as from the CLI: no ``device=`` picks cuda where torch sees a GPU, else cpu
    (lm-eval's HFLM default, cuda, died with "Torch not compiled with CUDA enabled" on a CPU)."""
    import torch
    from lm_eval import simple_evaluate

    from lorareuse_plugin.models import register_models

    register_models()
    out = simple_evaluate(
        model="lorareuse-hf",
        model_args={"library": str(tiny_library), "method": "delta_mean", "dtype": "float32"},
        tasks=["lorareuse_hop1_f"],
        task_manager=task_manager,
        limit=2,
        bootstrap_iters=0,
    )
    assert out["results"]["lorareuse_hop1_f"]["exact_match,extract"] >= 0
    assert out["config"]["device"] is None  # nothing was passed: the model chose
    from lorareuse_plugin.models.args import default_device

    assert default_device(None) == ("cuda" if torch.cuda.is_available() else "cpu")
