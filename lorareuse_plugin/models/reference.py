"""The ``model_args`` reference of ``lorareuse-hf`` / ``lorareuse-vllm``, generated from the keys
``models.args`` checks and the registry's parameter dataclasses, so it cannot drift from the code
(``lorareuse methods --markdown``; the README's copy is compared with it by a test)."""

from __future__ import annotations


def model_args_markdown() -> str:
    from lorareuse_plugin.models.args import HF_KEYS, OUR_KEY_HELP, STACKING_ARGS, VLLM_KEYS
    from lorareuse_plugin.reuse.params import described
    from lorareuse_plugin.reuse.registry import METHODS

    lines = [
        "| key | default | what it does |",
        "|---|---|---|",
        *(f"| `{k}` | {d} | {text} |" for k, (d, text) in OUR_KEY_HELP.items()),
        "",
        "| method | kind | backends | parameter | default | what it does |",
        "|---|---|---|---|---|---|",
    ]
    for m in METHODS.values():
        params = described(m.params_cls) or [("-", None, "")]
        for i, (name, default, text) in enumerate(params):
            head = f"| `{m.name}` | {m.kind} | {'+'.join(m.backends)} |" if i == 0 else "| | | |"
            shown = "-" if name == "-" else f"`{name}`"
            about = (text or m.summary).replace("|", "\\|")
            lines.append(f"{head} {shown} | {'-' if name == '-' else repr(default)} | {about} |")
    passed = lambda keys: ", ".join(f"`{k}`" for k in sorted(keys - set(OUR_KEY_HELP) - set(STACKING_ARGS)))  # noqa: E731
    lines += [
        "",
        "Every other key goes to lm-eval's own model unchanged: `lorareuse-hf` takes HFLM's "
        f"({passed(HF_KEYS)}; `device` defaults to `cuda` where torch sees a GPU, else `cpu`), `lorareuse-vllm` "
        f"vLLM's ({passed(VLLM_KEYS)}, and any `vllm.LLM` engine argument). "
        f"{', '.join(f'`{k}`' for k in STACKING_ARGS)} are refused: that adapter would be stacked silently under "
        "the reuse spec. A key close to one of these (`metod`) is refused as a typo before anything loads.",
    ]
    return "\n".join(lines) + "\n"
