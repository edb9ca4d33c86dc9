"""Benchmark: the framework's training loop and pool refresh against plain PyTorch loops.

``python -m src.bench [--device cpu|cuda] [sizes]`` prints a table and, as its last line, one JSON
object. Every loop runs in the same process on the same random CUB-sized problem (7,057 images,
d = 2,048, 150 seen classes, k = r = 312, K = 5, batches of 1,024 pairs by default):

- ``framework``: ``Trainer.fit`` of :class:`~src.models.system.MetricZSLSystem` with the
  negative-pool callback, Lightning included (image-major batches of ``batch_pairs / (K + 1)``
  images);
- ``plain image-major``: the same math and batches in a hand-written loop without Lightning
  (``lightning_overhead`` = framework epoch time / this loop's);
- ``plain per-pair``: METHOD.md's per-pair math, ``D = ‖L(Wᵀx − a)‖²`` for each of the 1,024
  (image, class) pairs of a batch (``ratio`` = this loop's epoch time / the framework's);
- ``pool refresh``: :meth:`~src.mining.pool.NegativePool.refresh`, the code the pool callback
  runs, on ``pool_images × pool_classes`` pairs with the hardest-negative strategy.
"""
