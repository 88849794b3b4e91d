"""Workload 6 of the acceptance suite: `import handprop` and `handprop --help` start-up time,
in fresh interpreters, with their targets.

    python benchmarks/bench_startup.py [--quick] [--repeats N] [--threads N] [--json PATH]
"""
import sys

from acceptance import main

if __name__ == "__main__":
    sys.exit(main(default=("startup",)))
