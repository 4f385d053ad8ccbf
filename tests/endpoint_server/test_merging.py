"""The merged call shared by the serving container and the local server's batcher."""

from __future__ import annotations

import numpy as np
import pytest

from endpoint_server.merging import WrongCount, call_merged
from model_code.code.inference import Prediction


def predict(items: list[str]) -> Prediction:
    vectors = np.array([[float(len(item))] for item in items], dtype=np.float32)
    return Prediction("m", vectors, [len(i) > 3 for i in items], [len(i) for i in items], logit_scale=2.0)


def test_each_request_gets_its_own_rows_and_per_item_facts() -> None:
    calls: list[list[str]] = []

    def call(items: list[str]) -> Prediction:
        calls.append(items)
        return predict(items)

    out = call_merged([["a", "bbbb"], ["cc"]], call, changes=lambda _m, i: {"encoding": ["float", "base64"][i]})
    assert calls == [["a", "bbbb", "cc"]]
    assert [p.vectors.ravel().tolist() for p in out] == [[1.0, 4.0], [2.0]]
    assert [(p.truncated, p.tokens, p.encoding) for p in out] == [
        ([False, True], [1, 4], "float"),
        ([False], [2], "base64"),
    ]
    assert all(p.logit_scale == 2.0 and p.model_id == "m" for p in out)


def test_absent_per_item_facts_stay_absent() -> None:
    out = call_merged([["a"], ["b"]], lambda items: Prediction("m", np.zeros((len(items), 1), np.float32)))
    assert [(p.truncated, p.tokens, p.vectors.shape) for p in out] == [(None, None, (1, 1))] * 2


def test_a_wrong_row_count_is_refused() -> None:
    with pytest.raises(WrongCount, match="returned 1 vectors for 3 items") as caught:
        call_merged([["a", "b"], ["c"]], lambda items: predict(items[:1]))
    assert (caught.value.got, caught.value.want) == (1, 3)
