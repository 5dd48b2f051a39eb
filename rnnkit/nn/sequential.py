"""A chain of single-input, single-output modules."""

from __future__ import annotations

from typing import Any

from rnnkit.nn.module import Module


class Sequential(Module):
    """``Sequential(a, b, c)(x) == c(b(a(x)))``; ``backward`` runs the chain in reverse order.

    Sub-modules are named ``"0"``, ``"1"``, ... so their parameters read ``"0.W"``, ``"1.b"``.
    Every member must map one array to one array (``RNN`` returns ``(out, h_n)``; models compose
    it explicitly).
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: argument {index} expected a Module, got {type(module).__name__}")
            setattr(self, str(index), module)

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def forward(self, x: Any) -> Any:
        for module in self._modules.values():
            x = module.forward(x)
        return x

    def backward(self, dy: Any) -> Any:
        for module in reversed(list(self._modules.values())):
            dy = module.backward(dy)
        return dy
