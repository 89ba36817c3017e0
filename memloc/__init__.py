"""memloc: localizing memorization in self-supervised vision encoders.

The reproducible companion to Wang et al., "Localizing Memorization in SSL Vision
Encoders" (NeurIPS 2024). The package reads as the pipeline: ``data`` → ``splits`` →
``models`` / ``augment`` / ``ssl`` → ``train`` → ``artifacts`` (cached encoder pairs) →
``activations`` / ``metrics`` → ``stats``.
"""

__version__ = "0.1.0"
