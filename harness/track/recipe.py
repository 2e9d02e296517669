"""The original-training recipe of a track: the one thing every retraining schedule derives from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Augmentation(BaseModel):
    """Batch augmentation applied to training batches (never to val/test)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    crop_padding: int = Field(0, ge=0)
    horizontal_flip: bool = False


class Recipe(BaseModel):
    """Optimizer and step-decay schedule of the original (dense) training."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    optimizer: str = Field("sgd", pattern="^sgd$")
    lr: float = Field(gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(ge=0)
    batch_size: int = Field(gt=0)
    epochs: int = Field(gt=0)
    milestones: tuple[int, ...] = ()
    gamma: float = Field(0.1, gt=0, le=1)
    augmentation: Augmentation = Augmentation()

    @model_validator(mode="after")
    def _milestones_inside_training(self) -> "Recipe":
        if list(self.milestones) != sorted(set(self.milestones)) or any(
            not 0 < m < self.epochs for m in self.milestones
        ):
            raise ValueError(
                f"milestones must be increasing epochs strictly between 0 and epochs={self.epochs}"
            )
        return self

    @property
    def final_lr(self) -> float:
        """The learning rate in effect at the end of original training (fine-tuning's rate)."""
        return self.lr_at_epoch(self.epochs)

    def lr_at_epoch(self, epoch: int) -> float:
        """The original schedule's rate during ``epoch``; epochs before 0 replay the initial rate.

        Dividing by 1/gamma keeps decimal rates exact (0.1 -> 0.01 -> 0.001).
        """
        decays = sum(1 for m in self.milestones if epoch >= m)
        return self.lr / (1 / self.gamma) ** decays
