"""memloc's metrics: LayerMem/ΔLayerMem (SSLMem per layer) and UnitMem/ClassMem.

- :func:`layermem` compares an encoder f with its reference g at every measurement point in
  one batched pass and returns a per-layer table (LayerMem, ΔLayerMem, cross-fitted Top-k /
  Least-k, the held-out calibration, a scale-free score, the S_C-vs-S_I contrast) and the
  per-image scores; :func:`alignment` is its one-encoder building block.
- :func:`unitmem` and :func:`classmem` score every unit of one encoder; :func:`mu_max_overlap`
  and ``UnitMemResult.dominance`` localise each unit's maximum on the images, and
  :func:`excess_over_controls` reads memorization as the excess over control encoders;
  :func:`unitmem_forward_shift` compares UnitMem under the paper's forward and the authors'
  skip-less reading of ResNet9.
"""

from memloc.metrics.layermem import LayerMemResult, alignment, layermem
from memloc.metrics.unitmem import (
    UndefinedUnitsWarning,
    UnitMemResult,
    classmem,
    excess_over_controls,
    mean_activations,
    mu_max_overlap,
    selectivity,
    unitmem,
    unitmem_forward_shift,
)

__all__ = [
    "LayerMemResult",
    "UndefinedUnitsWarning",
    "UnitMemResult",
    "alignment",
    "classmem",
    "excess_over_controls",
    "layermem",
    "mean_activations",
    "mu_max_overlap",
    "selectivity",
    "unitmem",
    "unitmem_forward_shift",
]
