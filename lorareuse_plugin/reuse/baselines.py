"""Baselines: ``base`` (no adapter) and ``single:<expert>`` (one expert merged into the weights)."""

from lorareuse_plugin.reuse.params import NoParams

Params = NoParams
