"""Small synthetic datasets written in the real on-disk layouts.

Tests that only need *a* dataset in a given format read these files, so they
run without the offline copies of the real datasets (``real_data`` tests).

:func:`write_gnnbench_npz` writes a gnn-benchmark ``.npz`` file with Cora's
shape by default: 2708 nodes, of which a largest connected component of 2485
nodes and 5069 undirected edges with Cora's class sizes; the rest are small
components. The protocol's random draws depend only on the class sizes, so
this graph gets Cora's split and initialization seeds (121958; 711880,
946634, ...), while its node sets, edges and features are random.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import scipy.sparse as sp

#: Class sizes in the largest connected component of gnn-benchmark's Cora.
CORA_CLASS_SIZES = (285, 406, 726, 379, 214, 131, 344)

#: Nodes and undirected edges of Cora (raw file; largest connected component).
CORA_NUM_NODES = 2708
CORA_LCC_NUM_EDGES = 5069
CORA_NUM_FEATURES = 1433


def _component_edges(
    nodes: np.ndarray,
    labels: np.ndarray,
    num_edges: int,
    rng: np.random.Generator,
    homophily: float = 0.8,
) -> set[tuple[int, int]]:
    """A random tree on :obj:`nodes` plus random edges, mostly within classes."""
    order = rng.permutation(nodes)
    edges = {
        tuple(sorted((int(order[k]), int(order[rng.integers(k)]))))
        for k in range(1, order.size)
    }
    by_class = {c: nodes[labels[nodes] == c] for c in np.unique(labels[nodes])}
    while len(edges) < num_edges:
        u = int(rng.choice(nodes))
        same = by_class[labels[u]]
        v = int(rng.choice(same if rng.random() < homophily else nodes))
        if u != v:
            edges.add((min(u, v), max(u, v)))
    return edges


def _bag_of_words(
    labels: np.ndarray,
    num_features: int,
    rng: np.random.Generator,
    words_per_node: int = 18,
) -> sp.csr_matrix:
    """Word counts (mostly 1, some 2), each class favouring its own words."""
    num_classes = int(labels.max()) + 1
    topics = np.array_split(rng.permutation(num_features), num_classes)
    rows, cols = [], []
    for node, label in enumerate(labels):
        own = rng.choice(topics[label], 2 * words_per_node // 3, replace=False)
        other = rng.choice(num_features, words_per_node // 3, replace=False)
        words = np.concatenate([own, other])
        rows.extend([node] * words.size)
        cols.extend(words.tolist())
    counts = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)),
        shape=(labels.size, num_features),
    )
    counts.sum_duplicates()
    return counts


def write_gnnbench_npz(
    path: Path,
    class_sizes: tuple[int, ...] = CORA_CLASS_SIZES,
    num_nodes: int = CORA_NUM_NODES,
    num_edges: int = CORA_LCC_NUM_EDGES,
    num_features: int = CORA_NUM_FEATURES,
    seed: int = 0,
) -> Path:
    """Write a gnn-benchmark ``.npz`` file (the keys of ``cora.npz``).

    The largest connected component has ``sum(class_sizes)`` nodes and
    :obj:`num_edges` undirected edges; the other nodes form components of at
    most three nodes. Node ids are shuffled, every edge is stored in one
    direction only, one node of the component has a self loop and one has no
    words; features are word counts (so loading must binarize them).

    Args:
        path (Path): The file to write.
        class_sizes (tuple[int, ...]): Nodes per class in the component.
        num_nodes (int): Nodes in all.
        num_edges (int): Undirected edges in the component.
        num_features (int): Vocabulary size.
        seed (int): Seed of everything random.

    Returns:
        Path: :obj:`path`.
    """
    rng = np.random.default_rng(seed)
    num_classes = len(class_sizes)
    lcc_size = sum(class_sizes)
    lcc_labels = np.repeat(np.arange(num_classes), class_sizes)
    rest_labels = rng.integers(num_classes, size=num_nodes - lcc_size)
    labels = np.concatenate([lcc_labels, rest_labels])
    edges = _component_edges(np.arange(lcc_size), labels, num_edges, rng)
    start = lcc_size  # the rest: paths of 1 to 3 nodes
    while start < num_nodes:
        size = min(int(rng.integers(1, 4)), num_nodes - start)
        edges.update((start + k, start + k + 1) for k in range(size - 1))
        start += size
    edges.add((0, 0))
    features = _bag_of_words(labels, num_features, rng)
    features.data[features.indptr[1] : features.indptr[2]] = 0  # node 1: no words
    features.eliminate_zeros()

    perm = rng.permutation(num_nodes)  # new id of each node
    labels = labels[np.argsort(perm)]
    features = features[np.argsort(perm)]
    pairs = np.array(sorted(edges))
    flip = rng.random(len(pairs)) < 0.5
    pairs[flip] = pairs[flip, ::-1]
    adj = sp.csr_matrix(
        (np.ones(len(pairs), dtype=np.float32), (perm[pairs[:, 0]], perm[pairs[:, 1]])),
        shape=(num_nodes, num_nodes),
    )
    features = features.tocsr()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_gnnbench(
        path,
        adj,
        features,
        labels.astype(np.int8),
        node_names=np.array([f"node{i}" for i in range(num_nodes)]),
        class_names=np.array([f"class{c}" for c in range(num_classes)]),
    )
    return path


def save_gnnbench(
    path: Path, adj: sp.csr_matrix, attr: sp.csr_matrix, labels: np.ndarray, **extra
) -> None:
    """Save CSR adjacency, CSR features and labels in gnn-benchmark's keys."""
    np.savez(
        path,
        adj_data=adj.data,
        adj_indices=adj.indices,
        adj_indptr=adj.indptr,
        adj_shape=np.array(adj.shape),
        attr_data=attr.data,
        attr_indices=attr.indices,
        attr_indptr=attr.indptr,
        attr_shape=np.array(attr.shape),
        labels=labels,
        **extra,
    )


def write_planetoid_raw(
    folder: Path,
    name: str = "cora",
    num_classes: int = 7,
    num_unlabeled: int = 60,
    num_test: int = 200,
    num_features: int = 100,
    seed: int = 0,
    num_isolated: int = 0,
) -> Path:
    """Write the eight ``ind.<name>.*`` files that PyG's ``Planetoid`` reads.

    The public split of the result: 20 training nodes per class (nodes
    ``0..20 C - 1``), the next 500 validation nodes and :obj:`num_test` test
    nodes listed in shuffled order in ``ind.<name>.test.index``, as in the
    real files. The graph is connected, except for the last
    :obj:`num_isolated` test nodes, which have no edges.

    Args:
        folder (Path): The ``raw`` folder to write into.
        name (str): The dataset's file prefix.
        num_classes (int): Classes.
        num_unlabeled (int): Nodes in ``allx`` after the validation nodes.
        num_test (int): Test nodes (``tx``).
        num_features (int): Vocabulary size.
        seed (int): Seed of everything random.
        num_isolated (int): Test nodes left without edges.

    Returns:
        Path: :obj:`folder`.
    """
    rng = np.random.default_rng(seed)
    num_train = 20 * num_classes
    num_all = num_train + 500 + num_unlabeled
    num_nodes = num_all + num_test
    labels = np.concatenate(
        [
            rng.permutation(np.repeat(np.arange(num_classes), 20)),
            rng.integers(num_classes, size=num_nodes - num_train),
        ]
    )
    connected = np.arange(num_nodes - num_isolated)
    edges = _component_edges(connected, labels, 2 * connected.size, rng)
    features = _bag_of_words(labels, num_features, rng, words_per_node=9)
    features.data[:] = 1.0
    one_hot = np.eye(num_classes, dtype=np.int32)[labels]
    test_index = rng.permutation(np.arange(num_all, num_nodes))
    graph: dict[int, list[int]] = {node: [] for node in range(num_nodes)}
    for u, v in edges:
        graph[u].append(v)
        graph[v].append(u)
    objects = {
        "x": features[:num_train],
        "y": one_hot[:num_train],
        "allx": features[:num_all],
        "ally": one_hot[:num_all],
        "tx": features[test_index],
        "ty": one_hot[test_index],
        "graph": graph,
    }
    folder.mkdir(parents=True, exist_ok=True)
    for key, value in objects.items():
        with open(folder / f"ind.{name}.{key}", "wb") as f:
            pickle.dump(value, f)
    lines = "".join(f"{i}\n" for i in test_index)
    (folder / f"ind.{name}.test.index").write_text(lines)
    return folder


def small_graph(
    class_sizes: tuple[int, ...] = (12, 10, 8),
    num_splits: int = 2,
    num_features: int = 5,
    num_isolated: int = 2,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """A small labelled graph with its own split masks, as plain arrays.

    ``edges`` ``[E, 2]`` lists each edge once (directed as stored): a path
    through the first ``N - num_isolated`` nodes, some random chords and a
    self loop on node 0; the last :obj:`num_isolated` nodes form a path of
    their own (a second component). ``x`` holds counts 0..2, ``y`` the
    classes in order, ``train_masks``/``val_masks``/``test_masks``
    ``[num_splits, N]``: per split, 2 training and 2 validation nodes per
    class drawn among the connected nodes, the rest test.
    """
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(class_sizes)), class_sizes)
    num_nodes = y.size
    main = num_nodes - num_isolated
    edges = {(k, k + 1) for k in range(main - 1)}
    while len(edges) < main + 5:
        u, v = (int(a) for a in rng.choice(main, 2, replace=False))
        if (v, u) not in edges:
            edges.add((u, v))
    edges |= {(k, k + 1) for k in range(main, num_nodes - 1)}
    edges.add((0, 0))
    x = rng.integers(0, 3, size=(num_nodes, num_features)).astype(np.float32)
    masks = np.zeros((3, num_splits, num_nodes), dtype=bool)
    for s in range(num_splits):
        for c in range(len(class_sizes)):
            nodes = rng.permutation(np.flatnonzero(y[:main] == c))
            masks[0, s, nodes[:2]] = True
            masks[1, s, nodes[2:4]] = True
        masks[2, s] = ~(masks[0, s] | masks[1, s])
    return {
        "x": x,
        "y": y,
        "edges": np.array(sorted(edges), dtype=np.int64),
        "train_masks": masks[0],
        "val_masks": masks[1],
        "test_masks": masks[2],
    }


def write_graph_file(path: Path, fmt: str, graph: dict[str, np.ndarray]) -> Path:
    """Write :func:`small_graph`'s arrays as a file of dataset format :obj:`fmt`.

    ``csr`` and ``pyg`` store the masks as ``[N, S]``, ``heterophilous`` as
    ``[S, N]``; ``gnnbench`` and ``graphdata`` have no masks.
    """
    import torch
    from torch_geometric.data import Data

    x, y, edges = graph["x"], graph["y"], graph["edges"]
    num_nodes = y.size
    adj = sp.csr_matrix(
        (np.ones(len(edges), dtype=np.float32), (edges[:, 0], edges[:, 1])),
        shape=(num_nodes, num_nodes),
    )
    masks = {
        key[:-1]: graph[key].T for key in ("train_masks", "val_masks", "test_masks")
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csr":
        np.savez(path, indptr=adj.indptr, indices=adj.indices, x=x, y=y, **masks)
    elif fmt == "heterophilous":
        np.savez(
            path,
            node_features=x,
            node_labels=y,
            edges=edges,
            train_masks=graph["train_masks"],
            val_masks=graph["val_masks"],
            test_masks=graph["test_masks"],
        )
    elif fmt == "gnnbench":
        save_gnnbench(path, adj, sp.csr_matrix(x), y)
    elif fmt == "graphdata":
        boxes = {}
        for key, value in (("adj_matrix", adj), ("node_attr", sp.csr_matrix(x))):
            boxes[key] = np.empty((), dtype=object)
            boxes[key][()] = value
        np.savez(path, node_label=y.astype(np.int32), **boxes)
    elif fmt == "pyg":
        data = Data(
            x=torch.from_numpy(x),
            y=torch.from_numpy(y),
            edge_index=torch.from_numpy(edges.T.copy()),
            num_nodes=num_nodes,
            **{k: torch.from_numpy(v.copy()) for k, v in masks.items()},
        )
        torch.save(data, path)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return path
