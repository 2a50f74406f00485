r"""Synthetic studies and theory checks of Diff-ResNet (paper section V.A).

* :mod:`~diffresnet_pyg.synthetic.datasets`: seeded XOR discs, two circles,
  two moons and two spirals.
* :mod:`~diffresnet_pyg.synthetic.graph`: the truncated, row-normalized
  Gaussian-kernel :math:`W` and the step :math:`x \leftarrow x - \tau (I - W) x`.
* :mod:`~diffresnet_pyg.synthetic.metrics`: inter-cluster distance,
  cluster diameters, their ratio, linear separability.
* :mod:`~diffresnet_pyg.synthetic.studies`: the XOR collapse, the
  18-parameter net with and without diffusion, and :func:`make_figures`.
* :mod:`~diffresnet_pyg.synthetic.plots`: the PNG figures.
* :mod:`~diffresnet_pyg.synthetic.sbm`: a stochastic block model sampler for
  graphs of millions of nodes (benchmarks).

Example:
    >>> from diffresnet_pyg.synthetic import make_xor_discs, distance_diameter_ratio
    >>> data = make_xor_discs(seed=0)
    >>> round(distance_diameter_ratio(data.x, data.cluster), 2)
    0.37
"""

from diffresnet_pyg.synthetic.datasets import (
    XOR_CENTERS,
    XOR_CLASSES,
    SyntheticData,
    make_two_circles,
    make_two_moons,
    make_two_spirals,
    make_xor_discs,
    resolve_generator,
)
from diffresnet_pyg.synthetic.graph import (
    diffuse,
    diffusion_step,
    gaussian_kernel_graph,
    gaussian_kernel_weights,
    synthetic_diffusion_conv,
)
from diffresnet_pyg.synthetic.metrics import (
    cluster_diameters,
    cluster_geometry,
    distance_diameter_ratio,
    fit_log_slope,
    is_linearly_separable,
    linear_separability,
    max_intra_cluster_diameter,
    min_inter_cluster_distance,
    pairwise_distances,
)
from diffresnet_pyg.synthetic.sbm import sparse_stochastic_blockmodel_graph
from diffresnet_pyg.synthetic.studies import (
    NET_STUDIES,
    XOR_SNAPSHOT_STEPS,
    NetRunResult,
    NetStudyConfig,
    NetStudyResult,
    SyntheticNet,
    XorDiffusionResult,
    derive_seeds,
    make_figures,
    run_net_study,
    run_xor_diffusion,
    train_synthetic_net,
)

__all__ = [
    "NET_STUDIES",
    "XOR_CENTERS",
    "XOR_CLASSES",
    "XOR_SNAPSHOT_STEPS",
    "NetRunResult",
    "NetStudyConfig",
    "NetStudyResult",
    "SyntheticData",
    "SyntheticNet",
    "XorDiffusionResult",
    "cluster_diameters",
    "cluster_geometry",
    "derive_seeds",
    "diffuse",
    "diffusion_step",
    "distance_diameter_ratio",
    "fit_log_slope",
    "gaussian_kernel_graph",
    "gaussian_kernel_weights",
    "is_linearly_separable",
    "linear_separability",
    "make_figures",
    "make_two_circles",
    "make_two_moons",
    "make_two_spirals",
    "make_xor_discs",
    "max_intra_cluster_diameter",
    "min_inter_cluster_distance",
    "pairwise_distances",
    "resolve_generator",
    "run_net_study",
    "run_xor_diffusion",
    "sparse_stochastic_blockmodel_graph",
    "synthetic_diffusion_conv",
    "train_synthetic_net",
]
