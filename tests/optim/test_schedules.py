"""Learning-rate schedules by hand: closed forms, the warm-up and its hand-over, state."""

import json
import math

import numpy as np
import pytest

from rnnkit.optim import SGD, Adam, CosineAnnealingLR, LinearWarmup, StepLR
from tests.optim.helpers import make_params


def _optimizer(lr=1.0):
    return SGD(make_params(shapes=[(2,)]), lr=lr)


def _lrs(optimizer, schedule, steps):
    """The rate each of the first ``steps`` optimizer steps runs at."""
    rates = []
    for _ in range(steps):
        rates.append(optimizer.lr)
        schedule.step()
    return rates


def test_step_lr_by_hand():
    optimizer = _optimizer(0.8)
    np.testing.assert_allclose(_lrs(optimizer, StepLR(optimizer, step_size=2, gamma=0.5), 7),
                               [0.8, 0.8, 0.4, 0.4, 0.2, 0.2, 0.1], rtol=1e-15)


def test_cosine_by_hand():
    optimizer = _optimizer(1.1)
    rates = _lrs(optimizer, CosineAnnealingLR(optimizer, T_max=4, eta_min=0.1), 9)
    np.testing.assert_allclose(rates, [1.1, 0.1 + 0.5 * (1 + math.sqrt(0.5)), 0.6, 0.1 + 0.5 * (1 - math.sqrt(0.5)),
                                       0.1, 0.1 + 0.5 * (1 - math.sqrt(0.5)), 0.6, 0.1 + 0.5 * (1 + math.sqrt(0.5)), 1.1],
                               rtol=1e-14)


def test_linear_warmup_from_zero_then_constant():
    optimizer = _optimizer(2.0)
    schedule = LinearWarmup(optimizer, 4)
    assert optimizer.lr == 0.0
    np.testing.assert_allclose(_lrs(optimizer, schedule, 7), [0.0, 0.5, 1.0, 1.5, 2.0, 2.0, 2.0], rtol=1e-15)


def test_linear_warmup_hands_over_at_the_peak():
    optimizer = _optimizer(1.0)
    schedule = LinearWarmup(optimizer, 2, after=CosineAnnealingLR(optimizer, T_max=2))
    rates = _lrs(optimizer, schedule, 6)
    np.testing.assert_allclose(rates, [0.0, 0.5, 1.0, 0.5, 0.0, 0.5], atol=1e-15)
    optimizer = _optimizer(1.0)
    rates = _lrs(optimizer, LinearWarmup(optimizer, 3, after=StepLR(optimizer, step_size=2, gamma=0.1)), 8)
    np.testing.assert_allclose(rates, [0.0, 1 / 3, 2 / 3, 1.0, 1.0, 0.1, 0.1, 0.01], rtol=1e-14)


def test_every_schedule_on_an_optimizer_shares_its_initial_lr():
    optimizer = _optimizer(0.3)
    LinearWarmup(optimizer, 10)  # sets lr to 0 ...
    cosine = CosineAnnealingLR(optimizer, T_max=5)  # ... which must not become the cosine's base
    assert cosine.base_lr == optimizer.initial_lr == 0.3 and optimizer.lr == 0.3


def test_schedules_drive_the_optimizer_step():
    params = [("w", np.array([0.0]), np.array([1.0]))]
    optimizer = SGD(params, lr=1.0)
    schedule = LinearWarmup(optimizer, 2)
    for _ in range(4):
        optimizer.step()
        schedule.step()
    assert params[0][1][0] == -(0.0 + 0.5 + 1.0 + 1.0)


@pytest.mark.parametrize("build", [
    lambda o: StepLR(o, step_size=3, gamma=0.5),
    lambda o: CosineAnnealingLR(o, T_max=7, eta_min=0.01),
    lambda o: LinearWarmup(o, 3),
    lambda o: LinearWarmup(o, 3, after=CosineAnnealingLR(o, T_max=5)),
], ids=["step", "cosine", "warmup", "warmup+cosine"])
def test_state_dict_round_trip_through_json(build):
    straight_optimizer = _optimizer(0.5)
    straight = _lrs(straight_optimizer, build(straight_optimizer), 12)
    first_optimizer = _optimizer(0.5)
    first = build(first_optimizer)
    _lrs(first_optimizer, first, 5)
    saved = json.loads(json.dumps(first.state_dict()))
    optimizer = _optimizer(0.5)
    second = build(optimizer)
    second.load_state_dict(saved)
    assert second.count == 5 and optimizer.lr == first_optimizer.lr
    assert straight[5:] == _lrs(optimizer, second, 7)


def _warmup_state():
    optimizer = _optimizer()
    return LinearWarmup(optimizer, 3, after=StepLR(optimizer, 2)).state_dict()


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.__setitem__("type", "StepLR"), r"schedule state: expected type LinearWarmup, got 'StepLR'"),
    (lambda s: s.pop("count"),
     r"expected the keys type, count, base_lr, warmup_steps of LinearWarmup.state_dict\(\), got missing count"),
    (lambda s: s.__setitem__("gamma", 0.5), r"got unknown gamma"),
    (lambda s: s.__setitem__("count", -2), r"schedule state\['count'\]: expected an integer >= 0, got -2"),
    (lambda s: s.__setitem__("warmup_steps", 0), r"schedule state: warmup_steps: expected a positive integer, got 0"),
    (lambda s: s.__setitem__("after", None),
     r"schedule state\['after'\]: expected a schedule state \(as this warm-up was built\), got None"),
    (lambda s: s["after"].__setitem__("type", "CosineAnnealingLR"), r"expected type StepLR, got 'CosineAnnealingLR'"),
])
def test_load_state_dict_errors_change_nothing(edit, message):
    state = _warmup_state()
    edit(state)
    optimizer = _optimizer()
    schedule = LinearWarmup(optimizer, 3, after=StepLR(optimizer, 2))
    schedule.step()
    before = schedule.state_dict()
    with pytest.raises(ValueError, match=message):
        schedule.load_state_dict(state)
    assert schedule.state_dict() == before and optimizer.lr == 1 / 3


def test_bad_arguments():
    optimizer, other = _optimizer(), _optimizer()
    cases = [
        (lambda: StepLR(optimizer, step_size=0), ValueError, r"step_size: expected a positive integer, got 0"),
        (lambda: StepLR(optimizer, step_size=2.5), TypeError, r"step_size: expected a positive integer, got 2.5 \(float\)"),
        (lambda: StepLR(optimizer, 2, gamma=0.0), ValueError, r"gamma: expected a number > 0, got 0.0"),
        (lambda: CosineAnnealingLR(optimizer, T_max=0), ValueError, r"T_max: expected a positive integer, got 0"),
        (lambda: CosineAnnealingLR(optimizer, 5, eta_min=-0.1), ValueError, r"eta_min: expected a number >= 0, got -0.1"),
        (lambda: LinearWarmup(optimizer, warmup_steps=-3), ValueError, r"warmup_steps: expected a positive integer, got -3"),
        (lambda: LinearWarmup(optimizer, 3, after=StepLR(other, 2)), ValueError,
         r"after: expected a schedule on the same optimizer as the warm-up, got one on another"),
        (lambda: LinearWarmup(optimizer, 3, after="cosine"), TypeError, r"after: expected a Schedule or None, got str"),
        (lambda: StepLR(object(), 2), TypeError, r"optimizer: expected an optimizer with an lr attribute, got object"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()
    stepped = StepLR(optimizer, 2)
    stepped.step()
    with pytest.raises(ValueError, match=r"after: expected a fresh schedule \(count 0\), got one at count 1"):
        LinearWarmup(optimizer, 3, after=stepped)


def test_works_with_any_optimizer():
    optimizer = Adam(make_params(), lr=0.01)
    schedule = StepLR(optimizer, 1, gamma=0.5)
    schedule.step()
    assert optimizer.lr == 0.005 and optimizer.state_dict()["hyperparameters"]["lr"] == 0.005
