"""Outer loops: the OuterLoop interface, evolution strategies (evosax adapter), fitness, tasks, the driver."""

from metarl.meta.base import OuterLoop

__all__ = ["OuterLoop"]
