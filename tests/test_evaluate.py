import pytest
import torch

from diffresnet_pyg.evaluate import METRICS, Evaluator

LABEL_DTYPES = [torch.int64, torch.int32, torch.uint8]
SCORE_DTYPES = [torch.float32, torch.float64, torch.float16]

# (y_true, y_pred labels, accuracy, correct): computed by hand
LABEL_CASES = [
    ([0], [0], 1.0, 1),
    ([0], [1], 0.0, 0),
    ([0, 1, 2, 1], [0, 1, 1, 1], 3 / 4, 3),
    ([2, 2, 2], [2, 0, 1], 1 / 3, 1),
    ([1, 0, 1, 0, 1, 0, 1], [1, 1, 1, 1, 1, 1, 1], 4 / 7, 4),
]


@pytest.mark.parametrize("dtype", LABEL_DTYPES)
@pytest.mark.parametrize("y_true, y_pred, acc, correct", LABEL_CASES)
def test_accuracy_of_labels(y_true, y_pred, acc, correct, dtype):
    evaluator = Evaluator(["acc", "num_correct"])
    out = evaluator.eval(
        {
            "y_true": torch.tensor(y_true, dtype=dtype),
            "y_pred": torch.tensor(y_pred, dtype=dtype),
        }
    )
    assert out == {"acc": acc, "num_correct": correct}
    assert type(out["acc"]) is float and type(out["num_correct"]) is int


@pytest.mark.parametrize("dtype", SCORE_DTYPES)
def test_accuracy_of_scores_takes_the_argmax(dtype):
    scores = torch.tensor(
        [
            [0.1, 0.7, 0.2],  # 1
            [0.5, 0.5, 0.0],  # tie: the first maximum, 0
            [0.0, 0.0, 1.0],  # 2
            [-1.0, -3.0, -2.0],  # 0
        ],
        dtype=dtype,
    )
    y_true = torch.tensor([1, 1, 2, 2])
    assert Evaluator().eval({"y_true": y_true, "y_pred": scores}) == {"acc": 0.5}


def test_eval_batch_one_value_per_set():
    y_true = torch.tensor([[0, 1, 1], [2, 2, 0]])
    y_pred = torch.tensor([[0, 1, 0], [2, 2, 0]])
    out = Evaluator(["num_correct", "acc"]).eval_batch(
        {"y_true": y_true, "y_pred": y_pred}
    )
    assert list(out) == ["num_correct", "acc"]
    assert out["acc"].dtype == torch.float64
    assert out["acc"].tolist() == [2 / 3, 1.0]
    assert out["num_correct"].dtype == torch.int64
    assert out["num_correct"].tolist() == [2, 3]
    scores = torch.nn.functional.one_hot(y_pred, 3).float()  # [B, N, C]
    again = Evaluator().eval_batch({"y_true": y_true, "y_pred": scores})
    assert torch.equal(again["acc"], out["acc"])


@pytest.mark.parametrize("seed", range(5))
def test_bit_identical_to_correct_over_total(seed):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(6, 1037, 7, generator=gen)
    y = torch.randint(0, 7, (6, 1037), generator=gen)
    got = Evaluator().eval_batch({"y_true": y, "y_pred": logits})["acc"]
    expected = (logits.argmax(-1) == y).double().mean(1)  # the former expression
    assert torch.equal(got, expected)
    for b in range(6):
        one = Evaluator().eval({"y_true": y[b], "y_pred": logits[b]})["acc"]
        correct = int((logits[b].argmax(-1) == y[b]).sum())
        assert one == correct / 1037 == got[b].item()


def test_no_host_synchronization_is_needed_for_batches():
    logits = torch.randn(2, 3, 4, requires_grad=True)
    out = Evaluator().eval_batch({"y_true": torch.zeros(2, 3).long(), "y_pred": logits})
    assert isinstance(out["acc"], torch.Tensor) and not out["acc"].requires_grad


@pytest.mark.parametrize(
    "inputs, error, message",
    [
        ({"y_true": torch.tensor([0])}, ValueError, r"misses \['y_pred'\]"),
        ({"y_pred": torch.tensor([0])}, ValueError, r"misses \['y_true'\]"),
        ([torch.tensor([0])], TypeError, "must be a dict"),
        ({"y_true": [0, 1], "y_pred": torch.tensor([0, 1])}, TypeError, "y_true"),
        ({"y_true": torch.tensor([0, 1]), "y_pred": (0, 1)}, TypeError, "y_pred"),
        (
            {"y_true": torch.tensor([0, 1, 2]), "y_pred": torch.tensor([0, 1])},
            ValueError,
            r"y_pred must have y_true's shape \[3\] \(labels\) or \[3, 'C'\]",
        ),
        (
            {"y_true": torch.tensor([0, 1]), "y_pred": torch.rand(3, 4)},
            ValueError,
            r"got \[3, 4\]",
        ),
        (
            {"y_true": torch.tensor([[0, 1]]), "y_pred": torch.tensor([[0, 1]])},
            ValueError,
            r"y_true must have shape \[N\], got \[1, 2\]",
        ),
        (
            {"y_true": torch.tensor([0.0, 1.0]), "y_pred": torch.tensor([0, 1])},
            ValueError,
            "y_true must hold integer labels, got torch.float32",
        ),
        (
            {"y_true": torch.tensor([True]), "y_pred": torch.tensor([True])},
            ValueError,
            "integer labels, got torch.bool",
        ),
        (
            {"y_true": torch.tensor([0, 1]), "y_pred": torch.tensor([0.0, 1.0])},
            ValueError,
            "must hold integer labels, got torch.float32; pass scores",
        ),
        (
            {"y_true": torch.tensor([0, 1]), "y_pred": torch.ones(2, 3).long()},
            ValueError,
            "scores of shape \\[2, 3\\] must be floating point, got torch.int64",
        ),
        (
            {"y_true": torch.tensor([0, 1]), "y_pred": torch.ones(2, 0)},
            ValueError,
            "no classes",
        ),
        (
            {"y_true": torch.tensor([], dtype=torch.long), "y_pred": torch.ones(0, 3)},
            ValueError,
            r"y_true is empty \(shape \[0\]\)",
        ),
    ],
)
def test_invalid_inputs_are_clear_errors(inputs, error, message):
    with pytest.raises(error, match=message):
        Evaluator().eval(inputs)


def test_invalid_batches_are_clear_errors():
    evaluator = Evaluator()
    with pytest.raises(ValueError, match=r"shape \[B, N\], got \[3\]"):
        evaluator.eval_batch(
            {"y_true": torch.zeros(3).long(), "y_pred": torch.zeros(3)}
        )
    with pytest.raises(ValueError, match="empty"):
        evaluator.eval_batch(
            {"y_true": torch.zeros(2, 0).long(), "y_pred": torch.zeros(2, 0, 4)}
        )


def test_metric_names_are_checked():
    assert Evaluator().metrics == ("acc",)
    assert repr(Evaluator(["acc", "num_correct"])) == (
        "Evaluator(metrics=['acc', 'num_correct'])"
    )
    with pytest.raises(ValueError, match=r"unknown: \['f1'\]"):
        Evaluator(["acc", "f1"])
    with pytest.raises(ValueError, match="got none"):
        Evaluator([])
    with pytest.raises(ValueError, match="more than once"):
        Evaluator(["acc", "acc"])


def test_formats_describe_every_metric():
    evaluator = Evaluator(list(METRICS))
    assert "y_true" in evaluator.expected_input_format
    for name in METRICS:
        assert f"'{name}': {name}" in evaluator.expected_output_format
