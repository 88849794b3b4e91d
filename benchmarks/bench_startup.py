"""Workload 6: `import handprop` and `handprop --help` start-up time, in fresh interpreters.

    python benchmarks/bench_startup.py [--quick] [--repeats N] [--threads N] [--json PATH]
"""
from common import entry

if __name__ == "__main__":
    entry("startup")
