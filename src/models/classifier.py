"""What every zero-shot model shares: the dataset's classes and the GBU evaluation."""

from __future__ import annotations

from abc import abstractmethod

import lightning as L
import torch
from torch import Tensor

from src.metrics import PerClassAccuracy, harmonic_mean, predict


class ZSLClassifier(L.LightningModule):
    """Scores images against class signatures; evaluates ZSL and GZSL per the GBU protocol.

    Subclasses implement :meth:`class_distances` (smaller = more consistent). Signatures and the
    seen/unseen classes come from the datamodule at ``setup``; they are not saved in checkpoints.
    Evaluation dataloaders come in the order (unseen images, seen images).
    """

    #: whether :meth:`~lightning.Trainer.fit` has anything to learn
    trainable: bool = True

    def setup(self, stage: str) -> None:
        dm = self.trainer.datamodule
        self.register_buffer("signatures", dm.signatures.clone(), persistent=False)
        self.register_buffer("seen_classes", dm.seen_classes.clone(), persistent=False)
        self.register_buffer("unseen_classes", dm.unseen_classes.clone(), persistent=False)
        num_classes = len(dm.signatures)
        self.eval_metrics = torch.nn.ModuleDict(
            {
                "zsl_unseen": PerClassAccuracy(num_classes, dm.unseen_classes),
                "gzsl_unseen": PerClassAccuracy(num_classes, dm.unseen_classes),
                "gzsl_seen": PerClassAccuracy(num_classes, dm.seen_classes),
            }
        )

    @abstractmethod
    def class_distances(self, features: Tensor) -> Tensor:
        """Distance of every image to every class of the dataset (N × C)."""

    def _eval_step(self, batch: dict[str, Tensor], dataloader_idx: int) -> None:
        distances = self.class_distances(batch["features"])
        labels = batch["labels"]
        candidates = torch.cat([self.seen_classes, self.unseen_classes])
        gzsl_preds = predict(distances, candidates)
        if dataloader_idx == 0:  # unseen images
            self.eval_metrics["zsl_unseen"].update(predict(distances, self.unseen_classes), labels)
            self.eval_metrics["gzsl_unseen"].update(gzsl_preds, labels)
        else:  # seen images
            self.eval_metrics["gzsl_seen"].update(gzsl_preds, labels)

    def _eval_epoch_end(self, stage: str) -> None:
        m = self.eval_metrics
        unseen, seen = m["gzsl_unseen"].compute(), m["gzsl_seen"].compute()
        values = {
            f"{stage}/zsl_acc": m["zsl_unseen"].compute(),
            f"{stage}/gzsl_s": seen,
            f"{stage}/gzsl_u": unseen,
            f"{stage}/gzsl_H": harmonic_mean(seen, unseen),
        }
        self.log_dict({k: v.float() for k, v in values.items()}, prog_bar=True)
        for metric in m.values():
            metric.reset()

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0):
        self._eval_step(batch, dataloader_idx)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0):
        self._eval_step(batch, dataloader_idx)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")
