"""Metric-learning zero-shot classification with hard negative mining."""

from src.pretrained.compat import install_guard

# torchvision, when installed, is imported by torchmetrics, timm and open_clip: a CUDA build of
# it beside a CPU-only torch must not break those imports (src/pretrained/compat.py).
install_guard()
