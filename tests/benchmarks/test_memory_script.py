"""benchmarks/memory.py at tiny sizes: the adding problem's data, the gradient profile, the sweep's
stopping rule and one whole run of the command."""

import numpy as np
import pytest

import rnnkit.nn
from tests.benchmarks.scripts import load_script

memory = load_script("memory")
AVAILABLE_CELLS = [name for name, cls in memory.CELL_CLASSES.items() if hasattr(rnnkit.nn, cls)]


@pytest.mark.parametrize("length", [2, 7, 50])
def test_adding_problem_marks_one_step_in_each_half_and_sums_them(length):
    x, y = memory.adding_problem(np.random.default_rng(0), length, 300)
    assert x.shape == (length, 300, 2) and y.shape == (300, 1)
    assert x.dtype == np.float32
    values, markers = x[..., 0], x[..., 1]
    assert np.all((values >= 0) & (values < 1))
    assert np.all((markers == 0) | (markers == 1))
    half = length // 2
    assert np.all(markers[:half].sum(axis=0) == 1) and np.all(markers[half:].sum(axis=0) == 1)
    np.testing.assert_allclose(y[:, 0], (values * markers).sum(axis=0), rtol=1e-6)


def test_adding_problem_rejects_a_sequence_too_short_for_two_halves():
    with pytest.raises(ValueError, match="length: expected T >= 2"):
        memory.adding_problem(np.random.default_rng(0), 1, 4)


@pytest.mark.parametrize("cell", AVAILABLE_CELLS)
def test_gradient_profile_has_a_finite_value_per_step_that_fades_going_back(cell):
    module = memory.make_cell(cell, 2, 16, seed=0)
    norms = memory.gradient_profile(module, cell, 16, seed=0)
    assert norms.shape == (memory.FIGURE_STEPS,)
    assert np.all(np.isfinite(norms)) and norms[-1] > 0
    assert norms[0] < 1e-3 * norms[-1]  # at initialisation every cell forgets within 200 steps


def test_check_cells_names_what_is_missing(monkeypatch):
    with pytest.raises(SystemExit, match="unknown cell 'elman'"):
        memory.check_cells(["rnn", "elman"])
    monkeypatch.delattr(rnnkit.nn, "RNN")
    with pytest.raises(SystemExit, match="rnnkit.nn has no RNN"):
        memory.check_cells(["rnn"])


def test_short_sequences_are_solved_and_training_stops_there():
    budget = memory.Budget(steps=2000, seconds=30.0, eval_every=100, test_size=200)
    result = memory.train_adding("rnn", 4, budget, hidden=16, seed=0)
    assert result.solved and result.test_mse < memory.SOLVED_MSE
    assert result.train_steps < 2000 and result.train_steps % 100 == 0  # stopped at a check
    assert 0.1 < result.baseline_mse < 0.25  # 1/6 in expectation


def test_sweep_stops_a_cell_after_two_failures_in_a_row(capsys):
    untrained = memory.Budget(steps=0, test_size=32)
    results = memory.sweep(["rnn"], [3, 4, 5, 6], untrained, hidden=4, seed=0)
    assert [r.length for r in results] == [3, 4]
    assert not any(r.solved for r in results)
    assert capsys.readouterr().out.count("| rnn |") == 2


def test_verdict_tells_a_time_cap_from_a_spent_step_budget():
    budget = memory.Budget(steps=100)
    result = memory.Result("rnn", 10, 0.2, 0.17, False, 100, 1.0, model=None)
    assert memory.verdict(result, budget) == "no"
    result.train_steps = 40
    assert memory.verdict(result, budget) == "no (time cap)"
    result.solved = True
    assert memory.verdict(result, budget) == "yes"


def test_a_tiny_run_prints_the_table_and_writes_the_figure(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    figure = tmp_path / "gradient.png"
    memory.main(["--cells", "rnn", "--lengths", "3,5", "--steps", "20", "--hidden", "8", "--figure", str(figure)])
    out = capsys.readouterr().out
    assert out.startswith("CPU: ")
    assert "| rnn | 3 |" in out and "| rnn | 5 |" in out
    assert "longest T solved: rnn " in out
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
