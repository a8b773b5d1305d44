"""The one training loop, its checkpoints and its distributed set-up."""

from scidl.train.checkpoint import load_checkpoint, save_checkpoint
from scidl.train.distributed import DistInfo, init_distributed
from scidl.train.loop import Objective, Stage, TrainOptions, TrainResult, load_trained, train
from scidl.train.objectives import FieldRegression

__all__ = [
    "DistInfo",
    "FieldRegression",
    "Objective",
    "Stage",
    "TrainOptions",
    "TrainResult",
    "init_distributed",
    "load_checkpoint",
    "load_trained",
    "save_checkpoint",
    "train",
]
