"""Dataset builders: test splits, probes and expert training splits, JSONL export, lm-eval hook."""
