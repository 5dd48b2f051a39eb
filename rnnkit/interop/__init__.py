"""Bridges to other libraries. Each submodule imports its library lazily: ``import rnnkit``
never pulls in torch."""
