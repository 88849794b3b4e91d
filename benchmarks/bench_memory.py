"""Peak RSS (max resident memory) of `handprop train` with its defaults vs the equivalent PyTorch script, each in a child process (os.wait4 rusage).

    python benchmarks/bench_memory.py [--quick] [--repeats N] [--threads N] [--json PATH]
"""
from common import entry

if __name__ == "__main__":
    entry("memory")
