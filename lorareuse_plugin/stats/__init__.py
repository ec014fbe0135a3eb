"""Statistics a reviewer accepts: intervals honest at 0 and 1, cluster and paired resampling, exact tests.

Pure Python plus numpy (imported inside the resampling functions), so importing it stays cheap.
"""

from lorareuse_plugin.stats.intervals import Z95, Interval, Proportion, cell_interval, t_interval, wilson
from lorareuse_plugin.stats.paired import holm, mcnemar_exact, paired_difference, unpaired_difference

__all__ = [
    "Z95",
    "Interval",
    "Proportion",
    "cell_interval",
    "holm",
    "mcnemar_exact",
    "paired_difference",
    "t_interval",
    "unpaired_difference",
    "wilson",
]
