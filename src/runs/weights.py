"""Whether a checkpoint's weights fit this run's model, checked before anything is written."""

from __future__ import annotations

from typing import Any

from src.runs.checkpoints import CheckpointError


def check_state_shapes(checkpoint: dict[str, Any], model: Any, ckpt_path: Any) -> None:
    """Refuse a checkpoint whose weights do not fit this run's model, naming the tensors.

    Raises:
        CheckpointError: a tensor of another shape, or the weights of another model.
    """
    saved = {
        k: tuple(v.shape)
        for k, v in (checkpoint.get("state_dict") or {}).items()
        if hasattr(v, "shape")
    }
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    hparams = getattr(model, "hparams", {})
    here = ", ".join(
        f"{k}={hparams[k]}" for k in ("feature_dim", "signature_dim", "rank") if k in hparams
    )
    shapes = [
        f"{k} {saved[k]} (here {expected[k]})"
        for k in expected
        if saved.get(k, expected[k]) != expected[k]
    ]
    if shapes:
        raise CheckpointError(
            f"ckpt_path={ckpt_path} holds weights of other shapes than this run's model "
            f"({here}): {'; '.join(shapes)}; resume with the data and model.rank of the "
            "checkpoint's run, or start a new run without ckpt_path."
        )
    missing = sorted(expected.keys() - saved.keys())
    if missing:
        raise CheckpointError(
            f"ckpt_path={ckpt_path} holds the weights of another model (it lacks "
            f"{', '.join(missing[:4])}): resume with the model of the checkpoint's run, or "
            "start a new run without ckpt_path."
        )
