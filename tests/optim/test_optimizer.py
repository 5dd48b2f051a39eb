"""The optimizer contract without torch: hand-computed first steps, in-place updates, dtypes,
no per-step allocation, state_dict round trips and their errors, argument checks."""

import json
import math
import tracemalloc

import numpy as np
import pytest

from rnnkit.optim import (
    OPTIMIZERS,
    SGD,
    Adagrad,
    Adam,
    AdamW,
    RMSprop,
    make_optimizer,
    merge_state_dict,
    split_state_dict,
)
from tests.optim.helpers import CASES, FakeModule, case_id, gradient_sequence, make_params, run


# -- the update rules, by hand --------------------------------------------------------------------
def _one_param(value, grad):
    return [("w", np.array(value, dtype=np.float64), np.array(grad, dtype=np.float64))]


def test_sgd_momentum_buffer_starts_at_the_gradient_then_nesterov_looks_ahead():
    params = _one_param([1.0, -2.0], [0.5, 1.0])
    optimizer = SGD(params, lr=0.1, momentum=0.9, nesterov=True)
    optimizer.step()  # b = g; step along g + 0.9 b = 1.9 g
    np.testing.assert_allclose(params[0][1], [1.0 - 0.1 * 1.9 * 0.5, -2.0 - 0.1 * 1.9 * 1.0], rtol=1e-15)
    np.testing.assert_array_equal(optimizer.state["w"]["momentum_buffer"], [0.5, 1.0])
    params[0][2][...] = [1.0, 0.0]
    optimizer.step()  # b = 0.9 b + g
    np.testing.assert_allclose(optimizer.state["w"]["momentum_buffer"], [1.45, 0.9], rtol=1e-15)


def test_sgd_dampening_and_weight_decay():
    params = _one_param([2.0], [1.0])
    optimizer = SGD(params, lr=0.5, momentum=0.5, dampening=0.5, weight_decay=0.25)
    optimizer.step()  # g = 1 + 0.25 * 2 = 1.5 enters the buffer undamped
    assert params[0][1][0] == pytest.approx(2.0 - 0.5 * 1.5, rel=1e-15)
    optimizer.step()  # g = 1 + 0.25 * 1.25; b = 0.5 * 1.5 + 0.5 g
    g = 1.0 + 0.25 * 1.25
    assert params[0][1][0] == pytest.approx(1.25 - 0.5 * (0.75 + 0.5 * g), rel=1e-15)


@pytest.mark.parametrize("optimizer, options, denominator", [
    (Adam, dict(lr=0.01, eps=1e-8), lambda g: np.abs(g) + 1e-8),  # the bias corrections cancel
    (Adagrad, dict(lr=0.01, eps=1e-10), lambda g: np.abs(g) + 1e-10),
    (RMSprop, dict(lr=0.01, alpha=0.99, eps=1e-8), lambda g: np.sqrt(0.01) * np.abs(g) + 1e-8),
])
def test_first_adaptive_step_by_hand(optimizer, options, denominator):
    g = np.array([3.0, -0.002, 1e-3])
    params = _one_param([1.0, 1.0, 1.0], g)
    optimizer(params, **options).step()
    np.testing.assert_allclose(params[0][1], 1.0 - 0.01 * g / denominator(g), rtol=1e-13)


def test_adamw_decays_the_weights_adam_decays_the_gradient():
    # with a zero gradient Adam's L2 term becomes the whole gradient, a step of about lr;
    # AdamW shrinks the weights by exactly lr * weight_decay and takes no Adam step at all
    adam_params, adamw_params = _one_param([2.0, -4.0], [0.0, 0.0]), _one_param([2.0, -4.0], [0.0, 0.0])
    Adam(adam_params, lr=0.1, weight_decay=0.5).step()
    AdamW(adamw_params, lr=0.1, weight_decay=0.5).step()
    np.testing.assert_allclose(adam_params[0][1], [2.0 - 0.1 / (1 + 1e-8), -4.0 + 0.1 * 2 / (2 + 1e-8)], rtol=1e-15)
    np.testing.assert_array_equal(adamw_params[0][1], [2.0 * 0.95, -4.0 * 0.95])


def test_amsgrad_keeps_the_largest_second_moment():
    params = _one_param([0.0], [10.0])
    optimizer = Adam(params, betas=(0.9, 0.5), amsgrad=True)
    optimizer.step()
    params[0][2][...] = 0.0
    optimizer.step()
    state = optimizer.state["w"]
    assert state["exp_avg_sq"][0] == pytest.approx(25.0) and state["max_exp_avg_sq"][0] == pytest.approx(50.0)


# -- the parameter interface ----------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_updates_the_module_arrays_in_place_and_leaves_grads_alone(case):
    optimizer_cls, options = case
    module = FakeModule(make_params())
    arrays = dict(module.params)
    before = {name: p.copy() for name, p in arrays.items()}
    optimizer = optimizer_cls(module, **options)
    for (_, _, grad), g in zip(optimizer.params, gradient_sequence(1)[0]):
        grad[...] = g
    grads_before = {name: g.copy() for name, g in module.grads.items()}
    optimizer.step()
    for name, param in module.params.items():
        assert param is arrays[name]
        assert not np.array_equal(param, before[name]), name
        np.testing.assert_array_equal(module.grads[name], grads_before[name])  # weight decay must not leak in


def test_accepts_a_module_a_list_or_a_generator_of_triples():
    grads = gradient_sequence(3)
    results = []
    for wrap in (FakeModule, list, lambda triples: (t for t in triples)):
        params = make_params()
        run(Adam(wrap(params)), grads)
        results.append([p for _, p, _ in params])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_zero_grad_fills_gradients_with_zero_in_place():
    params = make_params()
    grad = params[0][2]
    grad[...] = 5.0
    SGD(params).zero_grad()
    assert params[0][2] is grad and not grad.any()


@pytest.mark.parametrize("case", CASES[1::2], ids=case_id)
def test_float32_params_and_state_stay_float32_and_track_float64(case):
    optimizer_cls, options = case
    grads = gradient_sequence(10)
    single, double = make_params(np.float32), make_params(np.float64)
    optimizer = optimizer_cls(single, **options)
    run(optimizer, grads)
    run(optimizer_cls(double, **options), grads)
    for (name, p32, _), (_, p64, _) in zip(single, double):
        assert p32.dtype == np.float32 and all(s.dtype == np.float32 for s in optimizer.state[name].values())
        np.testing.assert_allclose(p32, p64, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_steps_allocate_no_arrays_after_the_first(case):
    optimizer_cls, options = case
    params = make_params(shapes=[(256, 256), (256,)])  # one temporary would be 512 KiB
    for _, _, grad in params:
        grad[...] = 0.5
    optimizer = optimizer_cls(params, **options)
    optimizer.step()  # state and workspace are allocated here, once
    tracemalloc.start()
    try:
        for _ in range(3):
            optimizer.step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024, f"{peak} bytes allocated by 3 steps"


# -- state_dict -----------------------------------------------------------------------------------
def _json_round_trip(state_dict):
    arrays, scalars = split_state_dict(state_dict)
    assert all(isinstance(key, str) and isinstance(value, np.ndarray) for key, value in arrays.items())
    return merge_state_dict(arrays, json.loads(json.dumps(scalars)))


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_state_dict_round_trip_through_json_continues_identically(case):
    optimizer_cls, options = case
    grads = gradient_sequence(10)
    straight = optimizer_cls(make_params(), **options)
    run(straight, grads)
    first = optimizer_cls(make_params(), **options)
    run(first, grads[:5])
    saved = _json_round_trip(first.state_dict())
    frozen = {key: value.copy() for key, value in saved["state"].items()}
    parameters_at_5 = [(name, p.copy(), g.copy()) for name, p, g in first.params]
    run(first, grads[5:])  # the saved arrays are copies: stepping on must not change them
    second = optimizer_cls(parameters_at_5, **options)
    second.load_state_dict(saved)
    assert second.step_count == 5
    run(second, grads[5:])
    for key, value in frozen.items():  # nor may the loaded optimizer write into them
        np.testing.assert_array_equal(saved["state"][key], value, err_msg=key)
    for (name, a, _), (_, b, _) in zip(straight.params, second.params):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_state_dict_layout():
    optimizer = Adam(make_params(), lr=0.02, amsgrad=True)
    assert optimizer.state_dict() == {"type": "Adam", "step": 0, "state": {}, "hyperparameters": {
        "lr": 0.02, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0, "amsgrad": True}}
    run(optimizer, gradient_sequence(1))
    keys = optimizer.state_dict()["state"]
    assert list(keys) == [f"{state}.layer.p{i}" for i in range(3) for state in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")]


def test_load_restores_lr_and_options_and_casts_state_to_the_param_dtype():
    source = Adam(make_params(), lr=0.05, amsgrad=True)
    run(source, gradient_sequence(2))
    target = Adam(make_params(np.float32), lr=0.001)
    target.load_state_dict(source.state_dict())
    assert target.lr == 0.05 and target.amsgrad and target.step_count == 2
    assert target.state["layer.p0"]["max_exp_avg_sq"].dtype == np.float32


def _stepped(optimizer_cls=Adam, steps=1, **options):
    optimizer = optimizer_cls(make_params(), **options)
    run(optimizer, gradient_sequence(steps))
    return optimizer


@pytest.mark.parametrize("edit, error, message", [
    (lambda s: s["state"].__setitem__("exp_avg.layer.p0", np.zeros((2, 2))), ValueError,
     r"optimizer state\['exp_avg.layer.p0'\]: expected shape \(3, 4\), got \(2, 2\)"),
    (lambda s: s["state"].pop("exp_avg_sq.layer.p1"), ValueError,
     r"optimizer state: missing 'exp_avg_sq.layer.p1' \(after 1 steps Adam keeps exp_avg, exp_avg_sq for every parameter\)"),
    (lambda s: s["state"].__setitem__("exp_avg.layer.p9", np.zeros(3)), ValueError,
     r"optimizer state: unexpected 'exp_avg.layer.p9' \(after 1 steps Adam keeps exp_avg, exp_avg_sq for every "
     r"parameter, as '<state>.<parameter name>' for parameters 'layer.p0' and 2 more\)"),
    (lambda s: s["state"].__setitem__("exp_avg.layer.p0", np.zeros((3, 4), dtype=np.int64)), ValueError,
     r"optimizer state\['exp_avg.layer.p0'\]: expected a float array, got dtype int64"),
    (lambda s: s.__setitem__("type", "SGD"), ValueError, r"optimizer state: expected type Adam, got 'SGD'"),
    (lambda s: s.pop("step"), ValueError, r"optimizer state: missing 'step'"),
    (lambda s: s.__setitem__("step", -1), ValueError, r"optimizer state\['step'\]: expected an integer >= 0, got -1"),
    (lambda s: s["hyperparameters"].__setitem__("momentum", 0.9), ValueError,
     r"optimizer state\['hyperparameters'\]: expected some of lr, betas, eps, weight_decay, amsgrad, got unknown momentum"),
    (lambda s: s["hyperparameters"].__setitem__("lr", -0.1), ValueError,
     r"optimizer state\['hyperparameters'\]: lr: expected a number >= 0, got -0.1"),
    (lambda s: s["hyperparameters"].__setitem__("amsgrad", True), ValueError,
     r"optimizer state: missing 'max_exp_avg_sq.layer.p0' and 2 more"),
])
def test_load_state_dict_names_the_problem_and_changes_nothing(edit, error, message):
    state = _stepped().state_dict()
    edit(state)
    optimizer = _stepped(lr=0.003)
    before = optimizer.state_dict()
    with pytest.raises(error, match=message):
        optimizer.load_state_dict(state)
    after = optimizer.state_dict()
    assert after["step"] == before["step"] and after["hyperparameters"] == before["hyperparameters"]
    for key, value in before["state"].items():
        np.testing.assert_array_equal(after["state"][key], value)


def test_state_at_step_zero_must_be_empty_and_sgd_without_momentum_keeps_none():
    assert _stepped(SGD, steps=3).state_dict()["state"] == {}
    state = _stepped(SGD, momentum=0.9).state_dict()
    state["step"] = 0
    with pytest.raises(ValueError, match=r"unexpected 'momentum_buffer.layer.p0' and 2 more \(after 0 steps SGD keeps no state"):
        SGD(make_params(), momentum=0.9).load_state_dict(state)


# -- arguments ------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, error, message", [
    (lambda: SGD(make_params(), lr=-1), ValueError, r"lr: expected a number >= 0, got -1"),
    (lambda: SGD(make_params(), lr=math.nan), ValueError, r"lr: expected a number >= 0, got nan"),
    (lambda: SGD(make_params(), lr="0.1"), TypeError, r"lr: expected a number >= 0, got '0.1' \(str\)"),
    (lambda: SGD(make_params(), momentum=1.0), ValueError, r"momentum: expected a number in \[0, 1\), got 1.0"),
    (lambda: SGD(make_params(), dampening=1.5), ValueError, r"dampening: expected a number in \[0, 1\], got 1.5"),
    (lambda: SGD(make_params(), nesterov=True), ValueError,
     r"nesterov: expected momentum > 0 and dampening = 0 with nesterov=True, got momentum=0.0, dampening=0.0"),
    (lambda: SGD(make_params(), momentum=0.9, dampening=0.1, nesterov=True), ValueError, r"got momentum=0.9, dampening=0.1"),
    (lambda: SGD(make_params(), nesterov="yes"), TypeError, r"nesterov: expected True or False, got 'yes'"),
    (lambda: SGD(make_params(), weight_decay=-1e-4), ValueError, r"weight_decay: expected a number >= 0, got -0.0001"),
    (lambda: Adagrad(make_params(), lr_decay=-1), ValueError, r"lr_decay: expected a number >= 0, got -1"),
    (lambda: Adagrad(make_params(), initial_accumulator_value=-1), ValueError, r"initial_accumulator_value: expected"),
    (lambda: RMSprop(make_params(), alpha=1.0), ValueError, r"alpha: expected a number in \[0, 1\), got 1.0"),
    (lambda: RMSprop(make_params(), eps=-1e-8), ValueError, r"eps: expected a number >= 0, got -1e-08"),
    (lambda: RMSprop(make_params(), centered=1), TypeError, r"centered: expected True or False, got 1 \(int\)"),
    (lambda: Adam(make_params(), betas=(0.9, 1.0)), ValueError, r"betas\[1\]: expected a number in \[0, 1\), got 1.0"),
    (lambda: Adam(make_params(), betas=(-0.1, 0.9)), ValueError, r"betas\[0\]: expected a number in \[0, 1\), got -0.1"),
    (lambda: Adam(make_params(), betas=0.9), ValueError, r"betas: expected a pair \(beta1, beta2\), each in \[0, 1\), got 0.9"),
    (lambda: AdamW(make_params(), weight_decay=-0.01), ValueError, r"weight_decay: expected a number >= 0, got -0.01"),
    (lambda: Adam(make_params(), amsgrad=None), TypeError, r"amsgrad: expected True or False, got None"),
    (lambda: SGD([]), ValueError, r"params: expected at least one \(name, param, grad\) triple, got none"),
    (lambda: SGD(make_params() * 2), ValueError,
     r"params: expected unique names \(state is keyed by name\), got 'layer.p0' twice"),
    (lambda: SGD([("w", np.zeros(3), np.zeros(4))]), ValueError,
     r"params\['w'\]: expected a gradient of shape \(3,\) and dtype float64, got shape \(4,\) and dtype float64"),
    (lambda: SGD([("w", np.zeros(3, np.float32), np.zeros(3))]), ValueError,
     r"and dtype float32, got shape \(3,\) and dtype float64"),
    (lambda: SGD([("w", np.zeros(3, np.int64), np.zeros(3, np.int64))]), TypeError,
     r"params\['w'\]: expected a float32 or float64 array, got dtype int64"),
    (lambda: SGD([("w", [0.0], [0.0])]), TypeError, r"params\[0\]: expected a \(str, ndarray, ndarray\) triple, got tuple"),
    (lambda: make_optimizer("adamax", make_params()), ValueError,
     r"optimizer: expected one of 'sgd', 'adagrad', 'rmsprop', 'adam', 'adamw', got 'adamax'"),
    (lambda: make_optimizer("sgd", make_params(), betas=(0.9, 0.99)), ValueError,
     r"options: expected some of lr, momentum, dampening, nesterov, weight_decay for optimizer 'sgd', got unknown betas"),
])
def test_bad_arguments_name_the_argument_the_range_and_the_value(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_lr_is_public_and_checked_when_set():
    optimizer = SGD(make_params(), lr=0.1)
    optimizer.lr = 0.05
    assert optimizer.hyperparameters()["lr"] == 0.05
    with pytest.raises(ValueError, match=r"lr: expected a number >= 0, got -0.5"):
        optimizer.lr = -0.5
    assert optimizer.lr == 0.05


def test_make_optimizer_builds_each_by_name_with_its_options():
    for name, cls in OPTIMIZERS.items():
        optimizer = make_optimizer(name, make_params(), lr=0.125)
        assert type(optimizer) is cls and optimizer.lr == 0.125
    assert make_optimizer("adamw", make_params()).weight_decay == 1e-2
