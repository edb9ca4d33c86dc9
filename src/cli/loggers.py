"""The project's W&B logger: Lightning's, without the one line of noise it causes.

Lightning's ``WandbLogger`` always passes ``anonymous`` to ``wandb.init`` (``None`` unless
set), and W&B ≥ 0.23 warns for any value that the setting has no effect (wandb/wandb#10909,
"integrations … unconditionally pass anonymous"). :class:`WandbLogger` drops the unset value.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger


class WandbLogger(LightningWandbLogger):
    """``lightning.pytorch.loggers.WandbLogger`` that leaves ``anonymous`` out unless given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._wandb_init.get("anonymous") is None:
            self._wandb_init.pop("anonymous", None)
