"""The expert library: recipe (adapters/*.yaml) -> trained PEFT adapter dirs + manifest.json."""
