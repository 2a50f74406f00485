"""Few-shot episode networks: one by one (the authors' way) vs batched.

The same episodes and the same initial weights are trained both ways, in one
run, and both timings are printed side by side:

* ``one by one``: the authors' per-episode loop (``fewshot/ablation.py`` of
  github shwangtangjun/Diff-ResNet): per episode the Gaussian weight matrix,
  a ``torch.nn.Module`` (``x + fc2(relu(fc1(x)))``, ``layer_num`` explicit
  diffusion steps, linear classifier), ``torch.optim.SGD`` (lr 0.1, momentum
  0.9, weight decay 1e-4) with ``MultiStepLR`` (x0.1 at 50% and 75% of the
  epochs), full-batch cross-entropy on the support;
* ``batched``: :func:`diffresnet_pyg.fewshot.methods.train_episode_nets` on
  all episodes at once.

The features are SYNTHETIC (Gaussian class clusters, L2-normalized rows;
``--dim 64`` stands for Conv-4 features, ``--dim 640`` for WRN-28-10), so only
the speed and the agreement of the two implementations are meaningful, not the
accuracy.

Usage::

    python benchmarks/fewshot_episodes.py [--episodes 40] [--dim 64]
        [--shot 1] [--threads 2] [--seed 0] [--layer-num 6] [--mu 0.0]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.optim.lr_scheduler import MultiStepLR

from diffresnet_pyg.evaluate import Evaluator
from diffresnet_pyg.fewshot.methods import (
    EpisodeNetConfig,
    init_episode_nets,
    train_episode_nets,
)
from diffresnet_pyg.nn.knn import gaussian_weight_matrix


class AuthorsDiffusionResNet(torch.nn.Module):
    """The authors' ``DiffusionResNet`` (``fewshot/diffresnet.py``)."""

    def __init__(
        self, dim: int, way: int, step_size: float, layer_num: int, weight: Tensor
    ) -> None:
        super().__init__()
        self.step_size = step_size
        self.layer_num = layer_num
        self.laplacian = torch.diag(weight.sum(dim=1)) - weight
        self.fc1 = torch.nn.Linear(dim, dim)
        self.fc2 = torch.nn.Linear(dim, dim)
        self.classifier = torch.nn.Linear(dim, way)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of all nodes ``x``."""
        x = self.fc2(F.relu(self.fc1(x))) + x
        for _ in range(self.layer_num):
            x = x - self.step_size * torch.matmul(self.laplacian, x)
        return self.classifier(x)


def authors_episode(
    support: Tensor,
    labels: Tensor,
    query: Tensor,
    way: int,
    config: EpisodeNetConfig,
    params: dict[str, Tensor],
) -> Tensor:
    """Train one episode as the authors do; return its query logits."""
    inputs = torch.cat([support, query], dim=0)
    weight = gaussian_weight_matrix(inputs, config.n_top, config.sigma)
    model = AuthorsDiffusionResNet(
        inputs.size(1), way, config.step_size, config.layer_num, weight
    )
    with torch.no_grad():  # start from the batched run's initial weights
        for name in ("fc1", "fc2", "classifier"):
            getattr(model, name).weight.copy_(params[f"{name}_weight"])
            getattr(model, name).bias.copy_(params[f"{name}_bias"])
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    scheduler = MultiStepLR(
        optimizer, milestones=list(config.milestones), gamma=config.gamma
    )
    num_support = support.size(0)
    for _ in range(config.epochs):
        outputs = model(inputs)
        loss = F.cross_entropy(outputs[:num_support], labels)
        if config.mu > 0:
            pairwise = torch.linalg.norm(
                outputs.unsqueeze(0) - outputs.unsqueeze(1), dim=-1
            )
            loss = loss + config.mu * torch.sum(weight * pairwise**2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    with torch.no_grad():
        return model(inputs)[num_support:]


def synthetic_episodes(
    num_episodes: int,
    way: int,
    shot: int,
    query: int,
    dim: int,
    generator: torch.Generator,
    num_classes: int = 20,
    per_class: int = 100,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Episodes drawn from synthetic class-indexed features."""
    means = torch.randn(num_classes, 1, dim, generator=generator)
    noise = torch.randn(num_classes, per_class, dim, generator=generator)
    features = means + 1.5 * noise
    features = features / features.norm(dim=-1, keepdim=True)
    classes = torch.stack(
        [
            torch.randperm(num_classes, generator=generator)[:way]
            for _ in range(num_episodes)
        ]
    )
    rows = torch.stack(
        [
            torch.stack(
                [
                    torch.randperm(per_class, generator=generator)[: shot + query]
                    for _ in range(way)
                ]
            )
            for _ in range(num_episodes)
        ]
    )  # [B, way, shot + query]
    picked = features[classes.unsqueeze(-1), rows]  # [B, way, shot + query, d]
    support = picked[:, :, :shot].reshape(num_episodes, way * shot, dim)
    queries = picked[:, :, shot:].reshape(num_episodes, way * query, dim)
    support_labels = torch.arange(way).repeat_interleave(shot).repeat(num_episodes, 1)
    query_labels = torch.arange(way).repeat_interleave(query).repeat(num_episodes, 1)
    return support, support_labels, queries, query_labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--way", type=int, default=5)
    parser.add_argument("--shot", type=int, default=1)
    parser.add_argument("--query", type=int, default=15)
    parser.add_argument("--layer-num", type=int, default=6)
    parser.add_argument("--mu", type=float, default=0.0)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    config = EpisodeNetConfig(
        layer_num=args.layer_num,
        mu=args.mu,
        epochs=args.epochs,
        milestones=(int(0.5 * args.epochs), int(0.75 * args.epochs)),
    )
    generator = torch.Generator().manual_seed(args.seed)
    support, labels, query, query_labels = synthetic_episodes(
        args.episodes, args.way, args.shot, args.query, args.dim, generator
    )
    params = init_episode_nets(args.episodes, args.dim, args.way, generator)
    print(
        f"SYNTHETIC features (Gaussian class clusters, not a real data set): "
        f"{args.episodes} episodes, {args.way}-way {args.shot}-shot, "
        f"{args.query} queries/class, d={args.dim}, float32, "
        f"{torch.get_num_threads()} threads"
    )
    print(
        f"network: layer_num={config.layer_num}, step_size={config.step_size}, "
        f"mu={config.mu}, {config.epochs} epochs, SGD lr={config.lr} "
        f"momentum={config.momentum} wd={config.weight_decay}, milestones "
        f"{config.milestones}"
    )

    # Warm-up (one episode each way), not timed.
    first = {k: v[:1] for k, v in params.items()}
    train_episode_nets(
        support[:1], labels[:1], query[:1], args.way, config, params=first
    )
    authors_episode(
        support[0],
        labels[0],
        query[0],
        args.way,
        config,
        {k: v[0] for k, v in first.items()},
    )

    start = time.perf_counter()
    one_by_one = torch.stack(
        [
            authors_episode(
                support[b],
                labels[b],
                query[b],
                args.way,
                config,
                {k: v[b] for k, v in params.items()},
            )
            for b in range(args.episodes)
        ]
    )
    seconds_loop = time.perf_counter() - start

    start = time.perf_counter()
    batched = train_episode_nets(
        support, labels, query, args.way, config, params=params
    )
    seconds_batched = time.perf_counter() - start

    rate_loop = args.episodes / seconds_loop
    rate_batched = args.episodes / seconds_batched
    evaluator = Evaluator("acc")

    def accuracy(y_true: Tensor, scores: Tensor) -> float:
        """Accuracy over all queries of all episodes."""
        inputs = {"y_true": y_true.flatten(), "y_pred": scores.flatten(0, 1)}
        return evaluator.eval(inputs)["acc"]

    same = accuracy(batched.argmax(-1), one_by_one)
    acc_loop = accuracy(query_labels, one_by_one)
    acc_batched = accuracy(query_labels, batched)
    print(f"{'':12s} {'seconds':>9s} {'episodes/s':>11s} {'accuracy':>9s}")
    print(
        f"{'one by one':12s} {seconds_loop:9.2f} {rate_loop:11.2f} "
        f"{100 * acc_loop:8.2f}%"
    )
    print(
        f"{'batched':12s} {seconds_batched:9.2f} {rate_batched:11.2f} "
        f"{100 * acc_batched:8.2f}%"
    )
    print(f"speed-up (batched / one by one): {rate_batched / rate_loop:.1f}x")
    print(
        f"agreement: {100 * same:.2f}% identical query predictions, max |logit "
        f"difference| {float((one_by_one - batched).abs().max()):.2e}"
    )


if __name__ == "__main__":
    main()
