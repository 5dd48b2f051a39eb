import math

import numpy as np
import pytest

from rnnkit.optim import (
    SGD, Adagrad, Adam, AdamW, CosineAnnealingLR, LinearWarmup, RMSprop, StepLR, clip_grad_norm, clip_grad_value,
    make_optimizer,
)

torch = pytest.importorskip("torch")

SHAPES = [(3, 4), (4,)]


def _params():
    rng = np.random.default_rng(0)
    return [(f"p{i}", rng.normal(size=s), np.zeros(s)) for i, s in enumerate(SHAPES)]


CASES = [
    (SGD, torch.optim.SGD, dict(lr=0.1)),
    (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
    (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.5, dampening=0.3)),
    (Adagrad, torch.optim.Adagrad, dict(lr=0.1)),
    (Adagrad, torch.optim.Adagrad, dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.2)),
    (RMSprop, torch.optim.RMSprop, dict(lr=0.01)),
    (RMSprop, torch.optim.RMSprop, dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01)),
    (Adam, torch.optim.Adam, dict(lr=0.01)),
    (Adam, torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True)),
    (AdamW, torch.optim.AdamW, dict(lr=0.01)),
    (AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
]


@pytest.mark.parametrize("ours, theirs, options", CASES, ids=lambda c: getattr(c, "__name__", str(c)))
def test_matches_torch_optim_step_by_step(ours, theirs, options):
    params = _params()
    torch_params = [torch.nn.Parameter(torch.tensor(p.copy())) for _, p, _ in params]
    optimizer, torch_optimizer = ours(params, **options), theirs(torch_params, **options)
    rng = np.random.default_rng(1)
    for _ in range(10):
        for (_, _, grad), tp in zip(params, torch_params):
            grad[...] = rng.normal(size=grad.shape)
            tp.grad = torch.tensor(grad.copy())
        optimizer.step()
        torch_optimizer.step()
    for (name, p, _), tp in zip(params, torch_params):
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("ours, _, options", CASES[1::2], ids=lambda c: getattr(c, "__name__", str(c)))
def test_state_dict_round_trip_continues_identically(ours, _, options):
    rng = np.random.default_rng(2)
    grads = [[rng.normal(size=s) for s in SHAPES] for _ in range(10)]

    def run(optimizer, steps):
        for step in steps:
            for (_, _, grad), g in zip(optimizer.params, grads[step]):
                grad[...] = g
            optimizer.step()

    straight = ours(_params(), **options)
    run(straight, range(10))
    first = ours(_params(), **options)
    run(first, range(5))
    saved = first.state_dict()
    second = ours([(n, p.copy(), g.copy()) for n, p, g in first.params], **options)
    second.load_state_dict(saved)
    run(second, range(5, 10))
    for (_, a, _), (_, b, _) in zip(straight.params, second.params):
        np.testing.assert_array_equal(a, b)


def test_load_state_dict_checks_keys_and_shapes():
    optimizer = Adam(_params())
    optimizer.step()
    state = optimizer.state_dict()
    state["state"]["exp_avg.p0"] = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"optimizer state\['exp_avg.p0'\]: expected shape \(3, 4\), got \(2, 2\)"):
        Adam(_params()).load_state_dict(state)
    with pytest.raises(ValueError, match=r"expected type Adam, got 'SGD'"):
        Adam(_params()).load_state_dict(SGD(_params()).state_dict())


def test_clip_grad_norm_matches_torch():
    params = _params()
    rng = np.random.default_rng(3)
    torch_params = []
    for _, p, grad in params:
        grad[...] = rng.normal(size=grad.shape) * 3
        tp = torch.nn.Parameter(torch.tensor(p.copy()))
        tp.grad = torch.tensor(grad.copy())
        torch_params.append(tp)
    norm = clip_grad_norm(params, 1.0)
    torch_norm = torch.nn.utils.clip_grad_norm_(torch_params, 1.0)
    assert norm == pytest.approx(float(torch_norm), rel=1e-12)
    for (_, _, grad), tp in zip(params, torch_params):
        np.testing.assert_allclose(grad, tp.grad.numpy(), rtol=1e-12)


def test_clip_grad_norm_leaves_nan_gradients_for_the_caller():
    params = _params()
    params[0][2][0, 0] = np.nan
    assert math.isnan(clip_grad_norm(params, 1.0))


def test_clip_grad_value():
    params = _params()
    params[0][2][...] = np.linspace(-3, 3, 12).reshape(3, 4)
    clip_grad_value(params, 1.0)
    assert params[0][2].max() == 1.0 and params[0][2].min() == -1.0


def test_schedules_match_torch():
    for ours, theirs, options in ((StepLR, torch.optim.lr_scheduler.StepLR, dict(step_size=3, gamma=0.5)),
                                  (CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR, dict(T_max=10, eta_min=0.01))):
        optimizer = SGD(_params(), lr=0.1)
        torch_optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        schedule, torch_schedule = ours(optimizer, **options), theirs(torch_optimizer, **options)
        for _ in range(25):
            torch_optimizer.step()
            torch_schedule.step()
            schedule.step()
            assert optimizer.lr == pytest.approx(torch_optimizer.param_groups[0]["lr"], rel=1e-12, abs=1e-15)


def test_linear_warmup_then_cosine():
    optimizer = SGD(_params(), lr=1.0)
    schedule = LinearWarmup(optimizer, 4, after=CosineAnnealingLR(optimizer, T_max=4))
    lrs = [optimizer.lr] + [schedule.step() for _ in range(8)]
    np.testing.assert_allclose(lrs[:5], [0.25, 0.5, 0.75, 1.0, 1.0])
    np.testing.assert_allclose(lrs[-1], 0.0, atol=1e-15)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: SGD(_params(), lr=-1), r"lr: expected a number >= 0, got -1"),
        (lambda: Adam(_params(), betas=(0.9, 1.0)), r"betas\[1\]: expected a number in \[0, 1\), got 1.0"),
        (lambda: SGD(_params(), nesterov=True), r"nesterov: expected momentum > 0"),
        (lambda: make_optimizer("adamax", _params()), r"optimizer: expected one of 'sgd', 'adagrad', 'rmsprop', 'adam', 'adamw', got 'adamax'"),
        (lambda: SGD([]), r"params: expected at least one parameter"),
    ],
)
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()
