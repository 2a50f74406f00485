import collections
import os
import pickle
import shutil

import numpy as np
import pytest
import torch

from diffresnet_pyg.fewshot.features import (
    ClassFeatures,
    load_feature_file,
    save_feature_file,
)


def assert_same_table(a: ClassFeatures, b: ClassFeatures) -> None:
    assert a.class_names == b.class_names
    assert torch.equal(a.ptr, b.ptr)
    assert a.features.dtype == b.features.dtype
    assert torch.equal(a.features, b.features)


# ---------------------------------------------------------------------------
# Construction and validation
# ---------------------------------------------------------------------------


def test_direct_construction_and_properties():
    x = torch.arange(12.0).view(6, 2)
    feats = ClassFeatures(
        x, torch.tensor([0, 1, 1, 6], dtype=torch.int32), ["a", "b", "c"]
    )
    assert feats.ptr.dtype == torch.long
    assert feats.class_names == ("a", "b", "c")
    assert feats.num_classes == 3 and feats.dim == 2
    assert feats.counts.tolist() == [1, 0, 5]
    assert feats.labels.tolist() == [0, 2, 2, 2, 2, 2]
    assert feats.class_features("b").shape == (0, 2)
    assert torch.equal(feats.class_features(2), x[1:])
    assert "num_classes=3" in repr(feats)


@pytest.mark.parametrize(
    "features, ptr, names, error, match",
    [
        (torch.zeros(4), torch.tensor([0, 4]), ["a"], ValueError, "2-D"),
        (
            torch.zeros(4, 2, dtype=torch.long),
            torch.tensor([0, 4]),
            ["a"],
            TypeError,
            "floating",
        ),
        (np.zeros((4, 2)), torch.tensor([0, 4]), ["a"], TypeError, "torch.Tensor"),
        (torch.zeros(4, 2), torch.tensor([0.0, 4.0]), ["a"], TypeError, "integer"),
        (torch.zeros(4, 2), torch.tensor([0]), [], ValueError, "C \\+ 1 >= 2"),
        (torch.zeros(4, 2), torch.tensor([1, 4]), ["a"], ValueError, "start at 0"),
        (torch.zeros(4, 2), torch.tensor([0, 3]), ["a"], ValueError, "end at"),
        (
            torch.zeros(4, 2),
            torch.tensor([0, 3, 2, 4]),
            ["a", "b", "c"],
            ValueError,
            "non-decreasing",
        ),
        (torch.zeros(4, 2), torch.tensor([0, 2, 4]), ["a"], ValueError, "1 entries"),
        (
            torch.zeros(4, 2),
            torch.tensor([0, 2, 4]),
            ["a", "a"],
            ValueError,
            "distinct",
        ),
        (torch.zeros(4, 2), torch.tensor([0, 2, 4]), ["a", 1], TypeError, "str"),
        (torch.zeros(4, 2), torch.tensor([0, 4]), "a", TypeError, "sequence"),
    ],
)
def test_validation(features, ptr, names, error, match):
    with pytest.raises(error, match=match):
        ClassFeatures(features, ptr, names)


def test_from_dict_formats_and_order():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal((2, 4)).astype(np.float32)
    c = rng.standard_normal((5, 4)).astype(np.float32)
    # The authors' layout: defaultdict(list) of 1-D rows, int keys, any order.
    authors = collections.defaultdict(list)
    for key, block in ((7, a), (2, b), (11, c)):
        authors[key].extend(list(block))
    feats = ClassFeatures.from_dict(authors)
    assert feats.class_names == ("7", "2", "11")  # insertion order, not sorted
    assert feats.features.dtype == torch.float32
    assert feats.ptr.tolist() == [0, 3, 5, 10]
    np.testing.assert_array_equal(feats.features.numpy(), np.concatenate([a, b, c]))
    # Same content as arrays, tensors and lists of row tensors.
    for convert in (
        lambda v: v,
        torch.from_numpy,
        lambda v: [torch.from_numpy(r) for r in v],
    ):
        other = ClassFeatures.from_dict({7: convert(a), 2: convert(b), 11: convert(c)})
        assert_same_table(feats, other)


def test_from_dict_dtypes():
    feats = ClassFeatures.from_dict({"x": [[1.0, 2.0]], "y": [[3.0, 4.0]]})
    assert feats.features.dtype == torch.get_default_dtype()
    feats = ClassFeatures.from_dict({"x": np.ones((2, 3), dtype=np.int64)})
    assert feats.features.dtype == torch.get_default_dtype()
    feats = ClassFeatures.from_dict({"x": np.ones((2, 3)), "y": np.ones((1, 3))})
    assert feats.features.dtype == torch.float64  # NumPy float64 is kept


@pytest.mark.parametrize(
    "mapping, error, match",
    [
        ({}, ValueError, "empty"),
        ([np.ones((2, 2))], TypeError, "mapping"),
        ({"a": np.ones(3)}, ValueError, "2-D"),
        ({"a": np.ones((2, 3)), "b": np.ones((2, 4))}, ValueError, "dimension 4"),
        ({"a": [[1.0, 2.0], [3.0]]}, ValueError, "rectangular"),
        ({"a": np.array([["u", "v"]])}, TypeError, "numeric"),
        ({1: np.ones((1, 2)), "1": np.ones((1, 2))}, ValueError, "distinct"),
    ],
)
def test_from_dict_errors(mapping, error, match):
    with pytest.raises(error, match=match):
        ClassFeatures.from_dict(mapping)


def test_from_labels_sorts_classes_stably():
    x = torch.arange(7.0).view(7, 1)
    labels = torch.tensor([5, 1, 5, 3, 1, 5, 3])
    feats = ClassFeatures.from_labels(x, labels)
    assert feats.class_names == ("1", "3", "5")
    assert feats.ptr.tolist() == [0, 2, 4, 7]
    assert feats.features.flatten().tolist() == [1, 4, 3, 6, 0, 2, 5]
    # Independent check: every row keeps its label.
    for c, name in enumerate(feats.class_names):
        rows = feats.class_features(c).flatten().long()
        assert (labels[rows] == int(name)).all()


def test_from_labels_strings_and_class_names():
    x = np.arange(8.0).reshape(4, 2)
    feats = ClassFeatures.from_labels(x, np.array(["dog", "cat", "dog", "ant"]))
    assert feats.class_names == ("ant", "cat", "dog")
    assert feats.features[:, 0].tolist() == [6.0, 2.0, 0.0, 4.0]
    named = ClassFeatures.from_labels(x, [2, 0, 2, 0], class_names=["z", "y", "x"])
    assert named.class_names == ("z", "y", "x")
    assert named.counts.tolist() == [2, 0, 2]  # empty class kept
    assert named.features[:, 0].tolist() == [2.0, 6.0, 0.0, 4.0]


@pytest.mark.parametrize(
    "features, labels, names, error, match",
    [
        (np.zeros((3, 2)), [0, 1], None, ValueError, "3 rows"),
        (np.zeros(3), [0, 1, 2], None, ValueError, "2-D"),
        (np.zeros((3, 2)), [[0, 1, 2]], None, ValueError, "1-D"),
        (np.zeros((3, 2)), [0.5, 1.0, 2.0], None, TypeError, "integers or strings"),
        (np.zeros((3, 2)), torch.tensor([0.5, 1.0, 2.0]), None, TypeError, "integers"),
        (np.zeros((0, 2)), np.zeros(0, dtype=int), None, ValueError, "empty"),
        (np.zeros((3, 2)), [0, 1, 2], ["a", "b"], ValueError, r"\[0, 2\)"),
        (np.zeros((3, 2)), [0.0, 1.0, 1.0], ["a", "b"], TypeError, "integers"),
    ],
)
def test_from_labels_errors(features, labels, names, error, match):
    with pytest.raises(error, match=match):
        ClassFeatures.from_labels(features, labels, class_names=names)


def test_from_tensor():
    x = torch.randn(3, 4, 5)
    feats = ClassFeatures.from_tensor(x)
    assert feats.class_names == ("0", "1", "2")
    for c in range(3):
        assert torch.equal(feats.class_features(c), x[c])
    named = ClassFeatures.from_tensor(x, class_names=["a", "b", "c"])
    assert torch.equal(named.class_features("c"), x[2])
    with pytest.raises(ValueError, match="3-D"):
        ClassFeatures.from_tensor(torch.zeros(3, 4))


def test_select_class_features_mean_and_to():
    x = torch.randn(4, 3, 2, dtype=torch.float64)
    feats = ClassFeatures.from_tensor(x, class_names=["a", "b", "c", "d"])
    sub = feats.select(["c", 0, np.int64(3)])
    assert sub.class_names == ("c", "a", "d")
    assert torch.equal(sub.features, torch.cat([x[2], x[0], x[3]]))
    np.testing.assert_allclose(
        feats.mean().numpy(), x.numpy().reshape(-1, 2).mean(axis=0), rtol=1e-12
    )
    half = feats.to(torch.float32)
    assert (
        half.features.dtype == torch.float32 and half.class_names == feats.class_names
    )
    assert torch.equal(feats.to().features, feats.features)
    with pytest.raises(TypeError, match="floating-point"):
        feats.to(torch.long)
    with pytest.raises(ValueError, match="unknown class name"):
        feats.class_features("e")
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        feats.class_features(4)
    with pytest.raises(TypeError, match="position"):
        feats.class_features(1.0)
    with pytest.raises(ValueError, match="empty"):
        feats.select([])
    with pytest.raises(ValueError, match="twice"):
        feats.select(["a", 0])
    with pytest.raises(TypeError, match="sequence"):
        feats.select("a")


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------


@pytest.fixture
def table():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(9, 6, generator=gen)
    ptr = torch.tensor([0, 4, 4, 9])
    return ClassFeatures(x, ptr, ("n01", "n02", "n03"))


def write_pickle(path, obj):
    with open(path, "wb") as handle:
        pickle.dump(obj, handle)


@pytest.mark.parametrize("suffix", [".pkl", ".pickle", ".plk"])
def test_load_pickle_dict_of_classes(tmp_path, suffix):
    rng = np.random.default_rng(1)
    content = collections.defaultdict(list)
    for label in (3, 0, 1):
        content[label].extend(list(rng.standard_normal((4, 5)).astype(np.float32)))
    path = tmp_path / f"output{suffix}"
    write_pickle(path, content)
    feats = load_feature_file(path)
    assert feats.class_names == ("3", "0", "1")
    assert feats.features.dtype == torch.float32
    for name in feats.class_names:
        expected = np.stack(content[int(name)])
        np.testing.assert_array_equal(feats.class_features(name).numpy(), expected)


CONVERT_HINT = (
    "convert it to the .npz layout, which is read with allow_pickle=False: "
    "np.savez('features.npz', features=X, labels=y) with numpy arrays X [M, d] "
    "and y [M] (or save_feature_file)"
)


def test_load_pickle_refuses_torch_tensors(tmp_path):
    content = {"b": torch.ones(2, 3), "a": torch.zeros(1, 3)}
    path = tmp_path / "f.pkl"
    write_pickle(path, content)
    with pytest.raises(ValueError) as info:
        load_feature_file(str(path))
    assert str(info.value) == (
        f"load_feature_file: {str(path)!r}: refusing to unpickle the global "
        "torch._utils._rebuild_tensor_v2; it holds torch tensors, which are not "
        "unpickled (that can run code); turn them into numpy arrays "
        f"(tensor.numpy()) and {CONVERT_HINT}"
    )
    # The conversion the message asks for reads back the same table.
    np.savez(
        tmp_path / "f.npz", **{key: value.numpy() for key, value in content.items()}
    )
    feats = load_feature_file(tmp_path / "f.npz")
    assert feats.class_names == ("b", "a")
    assert feats.features.tolist() == [[1.0] * 3, [1.0] * 3, [0.0] * 3]


class _TouchesFile:
    """Unpickling it with plain pickle would create :attr:`target`."""

    refused = f"{os.system.__module__}.system"

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


class _Execs:
    refused = "builtins.exec"

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (exec, (f"open({str(self.target)!r}, 'w').close()",))


@pytest.mark.parametrize("suffix", [".pkl", ".pickle", ".plk"])
@pytest.mark.parametrize("payload", [_TouchesFile, _Execs])
def test_load_pickle_never_runs_code(tmp_path, suffix, payload):
    target = tmp_path / "pwned"
    evil = payload(target)
    # As a value of the authors' layout, and as the whole file.
    for name, content in (("nested", {0: [np.ones(3), evil]}), ("top", evil)):
        path = tmp_path / f"{name}{suffix}"
        write_pickle(path, content)
        with pytest.raises(ValueError) as info:
            load_feature_file(path)
        assert str(info.value) == (
            f"load_feature_file: {str(path)!r}: refusing to unpickle the global "
            f"{payload.refused}; feature pickles may only hold numpy arrays, "
            "scipy sparse matrices and plain containers; nothing was run. To read "
            f"a file you trust, {CONVERT_HINT}"
        )
        assert not target.exists()


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("container", ["defaultdict", "OrderedDict"])
def test_load_pickle_containers_of_every_protocol(tmp_path, protocol, container):
    rows = np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32)
    if container == "defaultdict":  # the S2M2 / authors' layout
        content = collections.defaultdict(list)
        content["n02"].extend(rows[:3])
        content["n01"].extend(rows[3:])
    else:
        content = collections.OrderedDict(n02=tuple(rows[:3]), n01=rows[3:])
    path = tmp_path / "f.plk"
    with open(path, "wb") as handle:
        pickle.dump(content, handle, protocol=protocol)
    feats = load_feature_file(path)
    assert feats.class_names == ("n02", "n01")
    np.testing.assert_array_equal(feats.features.numpy(), rows)


@pytest.mark.parametrize("key", ["features", "data"])
def test_load_pickle_features_labels(tmp_path, key):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((10, 3))
    labels = rng.integers(0, 4, 10)
    write_pickle(tmp_path / "f.pkl", {key: x, "labels": labels})
    feats = load_feature_file(tmp_path / "f.pkl")
    assert_same_table(feats, ClassFeatures.from_labels(x, labels))
    for c, name in enumerate(feats.class_names):
        np.testing.assert_array_equal(
            feats.class_features(c).numpy(), x[labels == int(name)]
        )
    write_pickle(
        tmp_path / "g.pkl",
        {key: x, "labels": labels % 2, "class_names": ["even", "odd"]},
    )
    named = load_feature_file(tmp_path / "g.pkl")
    assert named.class_names == ("even", "odd")
    np.testing.assert_array_equal(
        named.class_features("odd").numpy(), x[labels % 2 == 1]
    )


def test_load_npz_both_layouts(tmp_path, table):
    x = table.features.numpy()
    labels = table.labels.numpy()
    np.savez(tmp_path / "labelled.npz", features=x, labels=labels)
    feats = load_feature_file(tmp_path / "labelled.npz")
    assert feats.class_names == ("0", "2")  # no names: only the classes present
    np.testing.assert_array_equal(feats.features.numpy(), x)

    np.savez(
        tmp_path / "named.npz",
        features=x,
        labels=labels,
        class_names=np.array(table.class_names),
    )
    assert_same_table(load_feature_file(tmp_path / "named.npz"), table)

    per_class = {"zebra": x[:4], "apple": x[4:9]}
    np.savez(tmp_path / "per_class.npz", **per_class)
    feats = load_feature_file(tmp_path / "per_class.npz")
    assert feats.class_names == ("zebra", "apple")  # file order
    np.testing.assert_array_equal(feats.class_features("apple").numpy(), x[4:9])


def test_save_round_trip(tmp_path, table):
    save_feature_file(tmp_path / "t.npz", table)
    assert_same_table(load_feature_file(tmp_path / "t.npz"), table)
    double = table.to(torch.float64)
    save_feature_file(str(tmp_path / "d.npz"), double)
    assert_same_table(load_feature_file(tmp_path / "d.npz"), double)
    with pytest.raises(ValueError, match="'.npz'"):
        save_feature_file(tmp_path / "t.pkl", table)
    with pytest.raises(TypeError, match="ClassFeatures"):
        save_feature_file(tmp_path / "t.npz", {"a": np.ones((1, 2))})


def test_load_errors(tmp_path):
    accepted = "accepted formats"
    (tmp_path / "f.txt").write_text("1 2 3")
    with pytest.raises(ValueError, match=f"unknown suffix.*f.txt.*{accepted}"):
        load_feature_file(tmp_path / "f.txt")
    with pytest.raises(FileNotFoundError):
        load_feature_file(tmp_path / "missing.npz")

    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match=f"junk.pkl.*{accepted}"):
        load_feature_file(tmp_path / "junk.pkl")
    write_pickle(tmp_path / "list.pkl", [np.ones((2, 2))])
    with pytest.raises(ValueError, match=f"list.pkl.*holds a list.*{accepted}"):
        load_feature_file(tmp_path / "list.pkl")
    write_pickle(tmp_path / "empty.pkl", {})
    with pytest.raises(ValueError, match="empty.pkl.*non-empty dict"):
        load_feature_file(tmp_path / "empty.pkl")
    write_pickle(tmp_path / "mixedkeys.pkl", {0: np.ones((2, 2)), "labels": [0, 0]})
    with pytest.raises(ValueError, match=r"mixedkeys.pkl.*keys \[0, 'labels'\]"):
        load_feature_file(tmp_path / "mixedkeys.pkl")
    write_pickle(tmp_path / "nolabels.pkl", {"features": np.ones((2, 2))})
    with pytest.raises(ValueError, match="nolabels.pkl.*'labels'"):
        load_feature_file(tmp_path / "nolabels.pkl")
    write_pickle(tmp_path / "dims.pkl", {0: np.ones(3), 1: np.ones(3)})
    with pytest.raises(
        ValueError, match=f"malformed content in .*dims.pkl.*2-D.*{accepted}"
    ):
        load_feature_file(tmp_path / "dims.pkl")
    write_pickle(tmp_path / "mixed.pkl", {0: np.ones((2, 3)), 1: np.ones((2, 4))})
    with pytest.raises(ValueError, match="mixed.pkl.*dimension"):
        load_feature_file(tmp_path / "mixed.pkl")
    write_pickle(tmp_path / "strs.pkl", {0: np.array([["a"]])})
    with pytest.raises(ValueError, match="strs.pkl.*numeric"):
        load_feature_file(tmp_path / "strs.pkl")

    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=f"junk.npz.*{accepted}"):
        load_feature_file(tmp_path / "junk.npz")
    np.savez(tmp_path / "obj.npz", a=np.array([np.ones(2), np.ones(3)], dtype=object))
    with pytest.raises(ValueError, match="obj.npz"):
        load_feature_file(tmp_path / "obj.npz")
    np.savez(tmp_path / "onlylabels.npz", labels=np.zeros(3))
    with pytest.raises(ValueError, match="onlylabels.npz.*'features'"):
        load_feature_file(tmp_path / "onlylabels.npz")
    np.savez(tmp_path / "wrongdim.npz", features=np.ones(4), labels=np.zeros(4, int))
    with pytest.raises(ValueError, match="wrongdim.npz.*2-D"):
        load_feature_file(tmp_path / "wrongdim.npz")
    np.savez(tmp_path / "nothing.npz")
    with pytest.raises(ValueError, match="nothing.npz.*empty"):
        load_feature_file(tmp_path / "nothing.npz")


# ---------------------------------------------------------------------------
# Real data: Omniglot evaluation characters as pooled pixel features
# ---------------------------------------------------------------------------


@pytest.mark.real_data
def test_omniglot_pixels_round_trip(shared_data, tmp_path):
    source = shared_data / "omniglot" / "images_evaluation.npz"
    if not source.is_file():
        pytest.skip(f"{source} not found")
    shutil.copy(source, tmp_path / "images.npz")
    with np.load(tmp_path / "images.npz") as archive:
        strokes = ~archive["images"][:12]  # (12, 20, 105, 105), stroke = True
        labels = archive["labels"][:12]
    pooled = strokes.reshape(12, 20, 15, 7, 15, 7).mean(axis=(3, 5), dtype=np.float32)
    x = pooled.reshape(240, 225)
    # Shuffle the rows: from_labels must regroup them by character.
    perm = np.random.default_rng(0).permutation(240)
    feats = ClassFeatures.from_labels(x[perm], labels.reshape(-1)[perm])
    assert feats.num_classes == 12 and feats.dim == 225
    assert feats.counts.tolist() == [20] * 12
    for c in range(12):
        rows = feats.class_features(c).numpy()
        expected = pooled[list(labels[:, 0]).index(int(feats.class_names[c]))]
        # Same set of rows (order follows the shuffle): compare sorted row bytes.
        assert sorted(r.tobytes() for r in rows) == sorted(
            r.tobytes() for r in expected
        )
    np.testing.assert_allclose(feats.mean().numpy(), x.mean(axis=0), rtol=1e-5)
    assert 0.0 < float(feats.mean().mean()) < 0.5  # strokes are a minority
    save_feature_file(tmp_path / "omniglot.npz", feats)
    assert_same_table(load_feature_file(tmp_path / "omniglot.npz"), feats)
