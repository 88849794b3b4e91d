"""Workload 4 of the acceptance suite: forward pass over the 10,000 MNIST test images,
handprop vs PyTorch, with its target.

    python benchmarks/bench_inference.py [--quick] [--repeats N] [--threads N] [--json PATH]
"""
import sys

from acceptance import main

if __name__ == "__main__":
    sys.exit(main(default=("infer",)))
