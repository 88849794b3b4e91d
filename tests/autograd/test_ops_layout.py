"""The op families in autograd/ops/ become Tensor methods; none hides another; autograd stays lazy."""
from __future__ import annotations

import subprocess
import sys

from handprop.autograd import Tensor
from handprop.autograd.ops import arithmetic, movement, reduction, unary

FAMILIES = (arithmetic, unary, reduction, movement)


def test_every_op_is_the_tensor_attribute_of_its_name_and_no_two_families_share_one():
    seen: dict[str, str] = {}
    for family in FAMILIES:
        for name, method in family.METHODS.items():
            assert name not in seen, f"{name} is defined by both {seen[name]} and {family.__name__}"
            seen[name] = family.__name__
            assert Tensor.__dict__[name] is method, f"Tensor.{name} is not {family.__name__}'s"


def test_import_handprop_loads_neither_autograd_nor_its_ops():
    probe = ("import sys, handprop; print(sorted(m for m in sys.modules "
             "if m.startswith('handprop.autograd')))")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
