"""memloc: localizing memorization in self-supervised vision encoders.

The reproducible companion to Wang et al., "Localizing Memorization in SSL Vision
Encoders" (NeurIPS 2024). The package reads as the pipeline: ``data`` → ``splits`` →
``models`` / ``augment`` / ``ssl`` → ``train`` → ``artifacts`` (cached encoder pairs) →
``activations`` / ``metrics`` → ``stats``.
"""

# Part of every cached encoder's key: 0.2.0 changed the views of 1-channel images (brightness
# and contrast jitter), so encoders trained by 0.1.0 are not reused.
__version__ = "0.2.0"
