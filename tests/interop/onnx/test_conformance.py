"""The ONNX project's own conformance cases for ``RNN``, ``LSTM`` and ``GRU``, through
``rnnkit.interop.onnx.run``, with the tolerances each case carries (as onnx's backend runner
compares them: ``assert_allclose(expected, actual, rtol, atol)`` and the same dtype)."""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import pytest

pytest.importorskip("onnx")

from rnnkit.interop.onnx.executor import run  # noqa: E402

# The 18 node cases of onnx 1.23 whose names mention a recurrent op.
CASE_NAMES = [
    "test_gru_batchwise", "test_gru_bidirectional", "test_gru_defaults", "test_gru_reverse",
    "test_gru_seq_length", "test_gru_with_initial_bias",
    "test_lstm_batchwise", "test_lstm_bidirectional", "test_lstm_defaults", "test_lstm_reverse",
    "test_lstm_with_initial_bias", "test_lstm_with_peepholes",
    "test_rnn_seq_length", "test_simple_rnn_batchwise", "test_simple_rnn_bidirectional",
    "test_simple_rnn_defaults", "test_simple_rnn_reverse", "test_simple_rnn_with_initial_bias",
]


@lru_cache(maxsize=1)
def recurrent_cases() -> dict:
    """name -> case, collected once: onnx builds every node case of every op (a few seconds)."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # other ops' cases warn about overflowing casts
        cases = collect_testcases(None)
    return {case.name: case for case in cases if any(op in case.name for op in ("rnn", "lstm", "gru"))}


def test_there_are_exactly_18_recurrent_cases():
    assert sorted(recurrent_cases()) == CASE_NAMES


@pytest.mark.parametrize("name", CASE_NAMES)
def test_conformance_case(name):
    case = recurrent_cases()[name]
    input_names = [value_info.name for value_info in case.model.graph.input]
    rtol = getattr(case, "rtol", 1e-3)
    atol = getattr(case, "atol", 1e-7)
    assert case.data_sets
    for inputs, expected in case.data_sets:
        actual = run(case.model, dict(zip(input_names, inputs)))
        assert len(actual) == len(expected)
        for got, want in zip(actual, expected):
            assert got.dtype == want.dtype
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
