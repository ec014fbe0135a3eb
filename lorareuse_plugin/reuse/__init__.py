"""Reuse methods: averaging (writes a real PEFT adapter) and routing (chooses experts per request
or per token). One module per method; ``registry.METHODS`` names them all."""
