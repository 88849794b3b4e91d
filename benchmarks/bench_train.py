"""Workloads 1-3 of the acceptance suite: training steps, handprop vs PyTorch (and GFLOP/s vs
sgemm for 3), with their targets.

    python benchmarks/bench_train.py [--quick] [--repeats N] [--threads N] [--json PATH]
"""
import sys

from acceptance import main

if __name__ == "__main__":
    sys.exit(main(default=("train64", "train512", "compute")))
