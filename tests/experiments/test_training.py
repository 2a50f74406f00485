import copy
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from diffresnet_pyg.experiments.training import (
    EarlyStopping,
    SingleMember,
    make_optimizer,
    stack_index,
    train_members,
)
from diffresnet_pyg.nn import DiffResNet
from diffresnet_pyg.nn.batched import BatchedDiffResNet, stack_baselines
from diffresnet_pyg.nn.models import baselines


def scripted(rule, patience, losses, accs):
    stopper = EarlyStopping(rule, patience, 1)
    improved, stopped_at = [], None
    for epoch, (loss, acc) in enumerate(zip(losses, accs, strict=True), start=1):
        imp, stop = stopper.step(torch.tensor([loss]), torch.tensor([acc]))
        improved.append(bool(imp))
        if bool(stop) and stopped_at is None:
            stopped_at = epoch
    return improved, stopped_at


def test_loss_or_acc_rule_on_a_scripted_sequence():
    losses = [1.0, 0.9, 0.95, 0.95, 0.8, 0.99, 0.99, 0.99]
    accs = [0.5, 0.5, 0.6, 0.55, 0.4, 0.6, 0.59, 0.58]
    improved, stopped = scripted("loss_or_acc", 2, losses, accs)
    # epoch 3: loss worse but acc 0.6 >= 0.5; epoch 4: 0.95 > 0.9 and 0.55 < 0.6;
    # epoch 5: loss 0.8 <= 0.9; epoch 6: acc 0.6 >= 0.6 (ties reset patience);
    # epochs 7, 8: neither -> stop at patience 2
    assert improved == [True, True, True, False, True, True, False, False]
    assert stopped == 8


def test_loss_or_acc_keeps_both_bests():
    stopper = EarlyStopping("loss_or_acc", 5, 1)
    stopper.step(torch.tensor([1.0]), torch.tensor([0.7]))
    stopper.step(torch.tensor([0.5]), torch.tensor([0.6]))  # loss better, acc worse
    assert stopper.best_loss.item() == 0.5
    assert stopper.best_acc.item() == pytest.approx(0.7)


def test_loss_rule_is_strict_and_ignores_accuracy():
    losses = [1.0, 1.0, 0.9, 0.95, 0.9]
    accs = [0.1, 0.9, 0.1, 1.0, 1.0]
    improved, stopped = scripted("loss", 2, losses, accs)
    assert improved == [True, False, True, False, False]
    assert stopped == 5


def test_none_rule_never_stops():
    improved, stopped = scripted("none", 1, [1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    assert improved == [True, True, True] and stopped is None


def test_rules_are_independent_per_member():
    stopper = EarlyStopping("loss", 1, 2)
    stopper.step(torch.tensor([1.0, 1.0]), torch.zeros(2))
    improved, stop = stopper.step(torch.tensor([0.5, 2.0]), torch.zeros(2))
    assert improved.tolist() == [True, False] and stop.tolist() == [False, True]
    stopper.select(torch.tensor([0]))
    assert stopper.best_loss.tolist() == [0.5]


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown early-stopping rule 'acc'"):
        EarlyStopping("acc", 5, 1)
    with pytest.raises(ValueError, match="'patience' must be an integer >= 1"):
        EarlyStopping("loss", 0, 1)
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        make_optimizer("lbfgs", [torch.zeros(1, requires_grad=True)], 0.1)
    with pytest.raises(ValueError, match="'momentum' applies to 'sgd' only"):
        make_optimizer("adam", [torch.zeros(1, requires_grad=True)], 0.1, momentum=0.9)
    with pytest.raises(ValueError, match="same number of nodes"):
        stack_index([torch.arange(3), torch.arange(4)], "cpu")


@pytest.fixture(scope="module")
def graph():
    """A small two-community graph with informative, noisy features."""
    gen = torch.Generator().manual_seed(0)
    n, f = 60, 12
    y = torch.arange(n) % 2
    x = torch.randn(n, f, generator=gen) * 0.8
    x[:, 0] += 1.5 * (2 * y - 1)
    probs = torch.where(y[:, None] == y[None, :], 0.2, 0.02)
    adj = torch.rand(n, n, generator=gen) < probs
    adj = torch.triu(adj, 1)
    edge_index = (adj | adj.t()).nonzero().t()
    perm = torch.randperm(n, generator=gen)
    return x, edge_index, y, perm[:10], perm[10:30], perm[30:]


def reference_run(model, graph, max_epochs, patience):
    """An independent one-model loop with the authors' early stopping."""
    x, edge_index, y, train, val, test = graph
    opt = torch.optim.Adam(model.parameters(), lr=0.05, weight_decay=5e-4)
    best_loss, best_acc, counter, best_state = math.inf, 0.0, 0, None
    epochs = 0
    while epochs < max_epochs:
        epochs += 1
        model.train()
        opt.zero_grad()
        F.cross_entropy(model(x, edge_index)[train], y[train]).backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            out = model(x, edge_index)[val]
        loss = F.cross_entropy(out, y[val]).item()
        acc = (out.argmax(1) == y[val]).double().mean().item()
        if loss <= best_loss or acc >= best_acc:
            best_loss, best_acc = min(loss, best_loss), max(acc, best_acc)
            counter, best_state = 0, copy.deepcopy(model.state_dict())
        else:
            counter += 1
        if counter >= patience:
            model.load_state_dict(best_state)
            break
    model.eval()
    with torch.no_grad():
        pred = model(x, edge_index).argmax(1)
    return epochs, (pred[test] == y[test]).double().mean().item()


def run_members(model, graph, num_members, **kwargs):
    x, edge_index, y, train, val, test = graph
    return train_members(
        model,
        x,
        edge_index,
        y,
        stack_index([train] * num_members, "cpu"),
        stack_index([val] * num_members, "cpu"),
        stack_index([test] * num_members, "cpu"),
        lr=0.05,
        **kwargs,
    )


def diffresnet(seed, dropout=0.3):
    torch.manual_seed(seed)
    return DiffResNet(
        12,
        16,
        2,
        num_blocks=1,
        diffusion_steps=3,
        dropout=dropout,
        diffusion_dropout=dropout,
        cached=True,
    )


def test_single_member_equals_an_independent_loop(graph):
    expected = reference_run(diffresnet(1), graph, 60, 5)
    torch.manual_seed(7)
    (single,) = run_members(
        SingleMember(diffresnet(1)), graph, 1, max_epochs=60, patience=5
    )
    assert (single.epochs, single.test_acc) == expected
    assert 1 <= single.best_epoch <= single.epochs


def test_batched_run_of_one_member_equals_the_unbatched_run(graph):
    """Same seeds -> same dropout draws -> the same run, checkpoint and score."""
    (plain,) = run_members(
        SingleMember(diffresnet(3)), graph, 1, max_epochs=40, patience=4
    )
    (batched,) = run_members(
        BatchedDiffResNet.from_modules([diffresnet(3)]),
        graph,
        1,
        max_epochs=40,
        patience=4,
    )
    assert (batched.epochs, batched.best_epoch) == (plain.epochs, plain.best_epoch)
    assert batched.test_acc == plain.test_acc
    assert batched.val_loss == pytest.approx(plain.val_loss, abs=1e-5)


@pytest.mark.parametrize("family", ["diffresnet", "gcn"])
def test_each_member_of_a_batch_is_its_own_run(graph, family):
    """Without dropout every member's run is deterministic: members that stop
    early are restored and removed while the others go on, and each ends
    exactly where its own unbatched run ends."""
    seeds = [11, 12, 13, 14]

    def member(seed):
        if family == "diffresnet":
            return diffresnet(seed, dropout=0.0)
        torch.manual_seed(seed)
        return baselines.gcn(12, 2, hidden_channels=8, dropout=0.0)

    alone = [
        run_members(
            SingleMember(member(s)),
            graph,
            1,
            max_epochs=80,
            patience=3,
            early_stopping="loss",
        )[0]
        for s in seeds
    ]
    models = [member(s) for s in seeds]
    batch = (
        BatchedDiffResNet.from_modules(models)
        if family == "diffresnet"
        else stack_baselines(models)
    )
    finished = []
    together = run_members(
        batch,
        graph,
        len(seeds),
        max_epochs=80,
        patience=3,
        early_stopping="loss",
        on_finish=lambda b, r: finished.append(b),
    )
    assert sorted(finished) == list(range(len(seeds)))
    for a, t in zip(alone, together, strict=True):
        assert (t.epochs, t.best_epoch) == (a.epochs, a.best_epoch)
        assert t.test_acc == a.test_acc
        assert t.val_acc == a.val_acc
        assert t.val_loss == pytest.approx(a.val_loss, abs=1e-5)
    assert len({r.epochs for r in alone}) > 1, "members should stop at different epochs"


def test_max_epochs_uses_the_final_weights(graph):
    (result,) = run_members(
        SingleMember(diffresnet(5, 0.0)), graph, 1, max_epochs=3, patience=50
    )
    assert result.epochs == 3 and result.best_epoch == 3


def test_none_rule_trains_every_epoch(graph):
    (result,) = run_members(
        SingleMember(diffresnet(5)),
        graph,
        1,
        max_epochs=7,
        patience=1,
        early_stopping="none",
    )
    assert result.epochs == 7 and result.best_epoch == 7


def test_index_shapes_are_checked(graph):
    x, edge_index, y, train, val, test = graph
    with pytest.raises(ValueError, match=r"'train_idx' must have shape \[1, K\]"):
        train_members(
            SingleMember(diffresnet(0)), x, edge_index, y, train, val[None], test[None]
        )


def test_weight_decay_on_chosen_parameters_survives_member_removal():
    from diffresnet_pyg.experiments.training import _select_members

    torch.manual_seed(0)
    model = BatchedDiffResNet.from_modules([diffresnet(s, 0.0) for s in (1, 2, 3)])
    decayed = [model.lin_in_weight]
    opt = make_optimizer("sgd", model.parameters(), 1.0, 0.5, decay_params=decayed)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()  # zero gradients: only the decayed weights move, by -lr * wd * w
    for name, p in model.named_parameters():
        expected = before[name] * (0.5 if name == "lin_in_weight" else 1.0)
        torch.testing.assert_close(p.detach(), expected)
    opt = _select_members(model, opt, torch.tensor([0, 2]))
    assert [g["weight_decay"] for g in opt.param_groups] == [0.5, 0.0]
    assert opt.param_groups[0]["params"] == [model.lin_in_weight]
    assert model.lin_in_weight.shape[0] == 2


def test_on_status_follows_each_member_until_it_finishes(graph):
    seeds = [11, 12, 13]
    model = BatchedDiffResNet.from_modules([diffresnet(s, 0.0) for s in seeds])
    statuses, results = [], {}
    run_members(
        model,
        graph,
        len(seeds),
        max_epochs=60,
        patience=3,
        early_stopping="loss",
        on_status=statuses.append,
        on_finish=results.__setitem__,
    )
    assert [s.epoch for s in statuses] == list(range(1, len(statuses) + 1))
    for member, result in results.items():
        seen = [s for s in statuses if member in s.members]
        assert seen[-1].epoch == result.epochs  # reported until it finishes
        last = seen[-1]
        b = last.members.index(member)
        stopped = result.epochs < 60 or last.waiting[b] >= 3
        if stopped:  # the restored checkpoint is the one last reported
            assert last.best_epoch[b] == result.best_epoch
            assert last.best_val_acc[b] == pytest.approx(result.val_acc)
            assert last.waiting[b] == 3
        for s in seen:
            b = s.members.index(member)
            assert s.waiting[b] == s.epoch - s.best_epoch[b]
            assert 0.0 <= s.val_acc[b] <= 1.0
    assert len({r.epochs for r in results.values()}) > 1


def _gat_members(seeds):
    from diffresnet_pyg.experiments.models import build_members
    from diffresnet_pyg.experiments.schema import ModelConfig

    config = ModelConfig(
        "gat", {"hidden_channels": 8, "heads": 2, "num_layers": 3, "dropout": 0.3}
    )
    return build_members(config, 12, 2, seeds, stacked=len(seeds) > 1)


@pytest.mark.parametrize("kind", ["stacked-gat", "stacked-diffresnet", "single"])
def test_resuming_a_checkpoint_gives_the_uninterrupted_run(graph, kind):
    """Dropout on: the random streams, optimizer, early-stopping states and
    finished members all come back, so training interrupted at any epoch and
    resumed from its last checkpoint ends exactly where it would have."""
    from diffresnet_pyg.experiments.models import build_members
    from diffresnet_pyg.experiments.schema import ModelConfig

    seeds = [3] if kind == "single" else [3, 4, 5, 6]

    def build():
        if kind == "stacked-gat":
            return _gat_members(seeds)
        config = ModelConfig(
            "diffresnet",
            {
                "hidden_channels": 16,
                "dropout": 0.3,
                "diffusion_steps": 3,
                "diffusion_dropout": 0.3,
            },
        )
        return build_members(config, 12, 2, seeds, stacked=kind != "single")

    settings = dict(
        max_epochs=60, patience=4, measure=lambda out: {"s": float(out.sum())}
    )
    states = []
    expected = run_members(
        build(),
        graph,
        len(seeds),
        on_checkpoint=states.append,
        checkpoint_seconds=0.0,
        **settings,
    )
    assert [s["epoch"] for s in states] == list(range(1, len(states) + 1))
    finished_early = [s for s in states if len(s["active"]) < len(seeds)]
    if kind != "single":
        assert finished_early, "some members should finish before the others"
    picks = [states[0], states[len(states) // 2], states[-1]] + finished_early[:1]
    for state in picks:
        torch.manual_seed(123)  # the global generator's state does not matter
        resumed = run_members(build(), graph, len(seeds), resume=state, **settings)
        for a, b in zip(expected, resumed, strict=True):
            assert dataclasses.replace(b, train_seconds=a.train_seconds) == a


def test_checkpoints_are_spaced_and_resume_is_checked(graph):
    def checkpoints(seconds):
        states = []
        run_members(
            _gat_members([1, 2]),
            graph,
            2,
            max_epochs=5,
            patience=50,
            on_checkpoint=states.append,
            checkpoint_seconds=seconds,
        )
        return states

    assert checkpoints(3600.0) == []
    states = checkpoints(0.0)
    assert [s["epoch"] for s in states] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="state of 2 members, the model has 3"):
        run_members(_gat_members([1, 2, 3]), graph, 3, max_epochs=5, resume=states[0])
    with pytest.raises(ValueError, match=r"at epoch 4, outside 1..2"):
        run_members(_gat_members([1, 2]), graph, 2, max_epochs=3, resume=states[-1])
    with pytest.raises(ValueError, match="not a training state: missing"):
        run_members(_gat_members([1, 2]), graph, 2, max_epochs=5, resume={"epoch": 1})
