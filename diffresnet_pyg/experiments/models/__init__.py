"""The models a config can name, one registration each.

:mod:`~diffresnet_pyg.experiments.models.registry` holds the registry and
builds models from it; every other module of this package registers models
(:func:`~diffresnet_pyg.experiments.models.registry.register_model`) and is
imported here, so a new model is one new module:

* :mod:`~diffresnet_pyg.experiments.models.diff_resnet`:
  ``diffresnet_reference`` (the authors' model) and ``diffresnet``;
* :mod:`~diffresnet_pyg.experiments.models.baselines`: ``gcn``, ``sage``,
  ``gat`` and ``mlp`` (PyG's models with gnn-benchmark's defaults);
* :mod:`~diffresnet_pyg.experiments.models.grand`: ``grand``;
* :mod:`~diffresnet_pyg.experiments.models.appnp`: ``appnp`` (PyG's
  ``APPNP`` after an MLP).
"""

import importlib
import pkgutil

from diffresnet_pyg.experiments.models.registry import (
    STANDARD_CHECKS,
    ModelChoice,
    ModelParam,
    ModelSpec,
    build_members,
    build_model,
    first_layer_weights,
    get_model,
    model_names,
    own_weight_decays,
    register_model,
)

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module != "registry":
        importlib.import_module(f"{__name__}.{_module}")

__all__ = [
    "STANDARD_CHECKS",
    "ModelChoice",
    "ModelParam",
    "ModelSpec",
    "build_members",
    "build_model",
    "first_layer_weights",
    "own_weight_decays",
    "get_model",
    "model_names",
    "register_model",
]
