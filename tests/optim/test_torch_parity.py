"""rnnkit.optim against torch.optim: the same parameters and gradients, step by step."""

import math

import numpy as np
import pytest

from rnnkit.optim import SGD, CosineAnnealingLR, StepLR, clip_grad_norm, clip_grad_value
from tests.optim.helpers import CASES, case_id, gradient_sequence, make_params

torch = pytest.importorskip("torch")


def _torch_twins(params):
    return [torch.nn.Parameter(torch.tensor(p.copy())) for _, p, _ in params]


def _run_both(optimizer_cls, options, dtype, steps=10):
    params = make_params(dtype)
    twins = _torch_twins(params)
    ours = optimizer_cls(params, **options)
    theirs = getattr(torch.optim, optimizer_cls.__name__)(twins, **options)
    for step, grads in enumerate(gradient_sequence(steps)):
        if step == 6:  # a schedule's change of lr must reach the very next update
            ours.lr = theirs.param_groups[0]["lr"] = options["lr"] / 3
        for (_, _, grad), twin, g in zip(params, twins, grads):
            grad[...] = g
            twin.grad = torch.tensor(grad.copy())
        ours.step()
        theirs.step()
    return ours, theirs, params, twins


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_parameters_and_state_match_torch_float64(case):
    ours, theirs, params, twins = _run_both(*case, np.float64)
    for (name, param, _), twin in zip(params, twins):
        np.testing.assert_allclose(param, twin.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
        # the state keeps torch's names, so checkpoints and interop can map them one to one
        torch_state = {k: v.numpy() for k, v in theirs.state[twin].items() if k != "step"}
        assert set(ours.state[name]) == set(torch_state)
        for key, value in torch_state.items():
            np.testing.assert_allclose(ours.state[name][key], value, rtol=1e-10, atol=1e-12, err_msg=f"{key}.{name}")


@pytest.mark.parametrize("case", CASES[1::2], ids=case_id)
def test_float32_stays_float32_and_matches_torch(case):
    ours, _, params, twins = _run_both(*case, np.float32)
    for (name, param, _), twin in zip(params, twins):
        assert param.dtype == np.float32
        assert all(value.dtype == np.float32 for value in ours.state[name].values())
        np.testing.assert_allclose(param, twin.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


def _grads_with_torch_twins(scale):
    params = make_params()
    twins = _torch_twins(params)
    for (_, _, grad), twin, g in zip(params, twins, gradient_sequence(1, seed=3)[0]):
        grad[...] = g * scale
        twin.grad = torch.tensor(grad.copy())
    return params, twins


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])  # clipping, and a norm already below the limit
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    params, twins = _grads_with_torch_twins(3.0)
    norm = clip_grad_norm(params, max_norm, norm_type)
    torch_norm = torch.nn.utils.clip_grad_norm_(twins, max_norm, norm_type)
    assert norm == pytest.approx(float(torch_norm), rel=1e-12)
    for (name, _, grad), twin in zip(params, twins):
        np.testing.assert_allclose(grad, twin.grad.numpy(), rtol=1e-12, atol=0, err_msg=name)


def test_clip_grad_value_matches_torch():
    params, twins = _grads_with_torch_twins(2.0)
    clip_grad_value(params, 0.7)
    torch.nn.utils.clip_grad_value_(twins, 0.7)
    for (name, _, grad), twin in zip(params, twins):
        np.testing.assert_array_equal(grad, twin.grad.numpy(), err_msg=name)
    assert max(np.abs(grad).max() for _, _, grad in params) == 0.7


@pytest.mark.parametrize("ours, theirs, options", [
    (StepLR, torch.optim.lr_scheduler.StepLR, dict(step_size=3, gamma=0.5)),
    (StepLR, torch.optim.lr_scheduler.StepLR, dict(step_size=7, gamma=0.9)),
    (CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR, dict(T_max=10)),
    (CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR, dict(T_max=12, eta_min=0.01)),
], ids=["step3", "step7", "cosine", "cosine-eta_min"])
def test_schedules_match_torch_for_30_steps(ours, theirs, options):
    optimizer = SGD(make_params(shapes=[(2,)]), lr=0.1)
    torch_optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))], lr=0.1)
    schedule, torch_schedule = ours(optimizer, **options), theirs(torch_optimizer, **options)
    assert optimizer.lr == torch_optimizer.param_groups[0]["lr"]
    for step in range(30):  # past T_max, where the cosine rises again
        torch_optimizer.step()
        torch_schedule.step()
        assert schedule.step() == optimizer.lr
        assert optimizer.lr == pytest.approx(torch_schedule.get_last_lr()[0], rel=1e-12, abs=1e-15), step
