"""Workload 7 of the acceptance suite: peak RSS of `handprop train` (defaults) vs the
equivalent PyTorch script, each in a child process, with its target.

    python benchmarks/bench_memory.py [--quick] [--repeats N] [--threads N] [--json PATH]
"""
import sys

from acceptance import main

if __name__ == "__main__":
    sys.exit(main(default=("memory",)))
