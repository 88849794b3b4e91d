"""Workload 4: forward pass over the 10,000 MNIST test images, handprop vs PyTorch.

    python benchmarks/bench_inference.py [--quick] [--repeats N] [--threads N] [--json PATH]
"""
from common import entry

if __name__ == "__main__":
    entry("infer")
