"""A sequence classifier on arrays you hold, in about fifteen lines: rnnkit's trainer (checkpoints,
exact resume, early stopping, the divergence guard, metrics.jsonl, loss.png) without a Task.

    python examples/fit_arrays.py
"""

import numpy as np

from rnnkit.models import ManyToOne
from rnnkit.train import evaluate, fit, predict

# Your data: sequences of any length (here 3 to 20 steps of 4 features), one label each: does
# the sequence's first feature sum to more than zero?
rng = np.random.default_rng(0)
x = [rng.normal(size=(rng.integers(3, 21), 4)).astype(np.float32) for _ in range(2000)]
y = np.array([int(s[:, 0].sum() > 0) for s in x])
x_train, y_train, x_test, y_test = x[:1600], y[:1600], x[1600:], y[1600:]

model = ManyToOne(2, 32, input_size=4, cell="gru", pooling="mean", seed=0)
result = fit(model, x_train, y_train, valid_split=0.1, out="runs/fit_example", epochs=20, lr=3e-3,
             overwrite=True)  # resume=True after a kill goes on exactly where it stopped
print(f"stopped by {result.reason}; best validation {result.best}")
print("test:", evaluate(model, x_test, y_test))
print("first five predictions:", predict(model, x_test[:5]).argmax(-1), "true:", y_test[:5])
