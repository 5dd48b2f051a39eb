"""Shared fixtures for the optimizer tests: parameters, gradient sequences, a stand-in module,
and the option combinations every optimizer test runs over."""

from __future__ import annotations

import numpy as np

from rnnkit.optim import SGD, Adagrad, Adam, AdamW, RMSprop

SHAPES = [(3, 4), (4,), (2, 3, 2)]

#: (optimizer, options): the defaults and the combinations that take other code paths
CASES = [
    (SGD, dict(lr=0.1)),
    (SGD, dict(lr=0.1, momentum=0.9)),
    (SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    (SGD, dict(lr=0.1, momentum=0.5, dampening=0.3, weight_decay=0.1)),
    (Adagrad, dict(lr=0.1)),
    (Adagrad, dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.2, eps=1e-6)),
    (RMSprop, dict(lr=0.01)),
    (RMSprop, dict(lr=0.01, alpha=0.9, momentum=0.9, weight_decay=0.01)),
    (RMSprop, dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01)),
    (RMSprop, dict(lr=0.01, alpha=0.3, centered=True)),  # alpha < 0.5 takes lerp's other branch
    (Adam, dict(lr=0.01)),
    (Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    (Adam, dict(lr=0.01, betas=(0.3, 0.9), weight_decay=0.1, amsgrad=True)),
    (AdamW, dict(lr=0.01)),
    (AdamW, dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
]


def case_id(case) -> str:
    optimizer, options = case
    return optimizer.__name__ + "(" + ",".join(f"{k}={v}" for k, v in options.items()) + ")"


def make_params(dtype=np.float64, seed: int = 0, shapes=SHAPES) -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(f"layer.p{i}", rng.normal(size=s).astype(dtype), np.zeros(s, dtype)) for i, s in enumerate(shapes)]


def gradient_sequence(steps: int, seed: int = 1, shapes=SHAPES) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[rng.normal(size=s) for s in shapes] for _ in range(steps)]


def run(optimizer, grads: list[list[np.ndarray]]) -> None:
    """Write each step's gradients into the optimizer's grad arrays, then step."""
    for step_grads in grads:
        for (_, _, grad), g in zip(optimizer.params, step_grads):
            grad[...] = g
        optimizer.step()


class FakeModule:
    """The parameter interface of ``rnnkit.nn.Module``: params and grads dicts, same keys."""

    def __init__(self, params: list[tuple[str, np.ndarray, np.ndarray]]) -> None:
        self.params = {name: p for name, p, _ in params}
        self.grads = {name: g for name, _, g in params}

    def named_parameters(self):
        for name, value in self.params.items():
            yield name, value, self.grads[name]
