"""Pretrained models' shared ground, below the rooms that use them (``data``: CLIP class
signatures; ``features``: image backbones): checked weights files (:mod:`~.weights`) and a CUDA
build of torchvision beside a CPU torch (:mod:`~.compat`)."""
