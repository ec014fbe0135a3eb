"""The embedded default base model: tokenizer, pretraining corpus, from-scratch trainer, cache."""
