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
    np.savez(
        path,
        adj_data=adj.data,
        adj_indices=adj.indices,
        adj_indptr=adj.indptr,
        adj_shape=np.array(adj.shape),
        attr_data=features.data,
        attr_indices=features.indices,
        attr_indptr=features.indptr,
        attr_shape=np.array(features.shape),
        labels=labels.astype(np.int8),
        node_names=np.array([f"node{i}" for i in range(num_nodes)]),
        class_names=np.array([f"class{c}" for c in range(num_classes)]),
    )
    return path


def write_planetoid_raw(
    folder: Path,
    name: str = "cora",
    num_classes: int = 7,
    num_unlabeled: int = 60,
    num_test: int = 200,
    num_features: int = 100,
    seed: int = 0,
) -> Path:
    """Write the eight ``ind.<name>.*`` files that PyG's ``Planetoid`` reads.

    The public split of the result: 20 training nodes per class (nodes
    ``0..20 C - 1``), the next 500 validation nodes and :obj:`num_test` test
    nodes listed in shuffled order in ``ind.<name>.test.index``, as in the
    real files. The graph is connected.

    Args:
        folder (Path): The ``raw`` folder to write into.
        name (str): The dataset's file prefix.
        num_classes (int): Classes.
        num_unlabeled (int): Nodes in ``allx`` after the validation nodes.
        num_test (int): Test nodes (``tx``).
        num_features (int): Vocabulary size.
        seed (int): Seed of everything random.

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
    edges = _component_edges(np.arange(num_nodes), labels, 2 * num_nodes, rng)
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
