"""``hard_sharing``: hard parameter sharing (Caruana 1997), one shared encoder and a head per task.

It is exactly the network and training of ``dense``, so it shares dense's cells: the sweep runs
(or finds) the dense cell, and the leaderboard lists that run again in the architectures group.
"""

from __future__ import annotations

from methods.lifecycle import Architecture
from methods.options import NoOptions
from methods.registry import register_method


@register_method("hard_sharing")
class HardSharing(Architecture):
    Options = NoOptions
    paper = "Caruana, Multitask Learning, Machine Learning 1997"
    same_cell_as = "dense"
