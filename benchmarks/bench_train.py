"""Workloads 1-3: training steps, handprop vs PyTorch (and GFLOP/s vs sgemm for 3).

    python benchmarks/bench_train.py [--quick] [--repeats N] [--threads N] [--json PATH]
"""
from common import entry

if __name__ == "__main__":
    entry("train64,train512,compute")
