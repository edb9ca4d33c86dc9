"""Metric-learning zero-shot classification with hard negative mining."""

from src.features.compat import install_guard

# torchvision, when installed, is imported by torchmetrics, timm and open_clip: a CUDA build of
# it beside a CPU-only torch must not break those imports (src/features/compat.py).
install_guard()
