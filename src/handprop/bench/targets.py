"""What ``handprop bench`` can run and what each workload must reach (no imports: the parser
reads the workload names)."""
from __future__ import annotations

WORKLOADS = ("train64", "train512", "compute", "infer", "data", "startup", "memory")
DEFAULT_WORKLOADS = ("train64", "train512", "compute", "infer", "data", "startup")

#: Targets: handprop/PyTorch ratio of the median time (or absolute seconds for start-up).
TARGETS = {"train64": 0.6, "train512": 0.8, "compute": 1.0, "infer": 0.6, "memory": 0.6,
           "import": 0.15, "help": 0.3, "sgemm_fraction": 0.6}
