"""The inner loop (one jitted training run)."""

from metarl.inner.train import TrainOutput, default_task, final_return, level_task, make_inner, make_train

__all__ = ["TrainOutput", "default_task", "final_return", "level_task", "make_inner", "make_train"]
