"""One rule for what a stored result depends on (memloc.fingerprint): the module that computes
it, the modules of the objects it is given, and everything those import."""

from __future__ import annotations

from memloc import fingerprint as F
from memloc.models import create


def _package(root, **modules):
    (root / "memloc").mkdir(parents=True, exist_ok=True)
    (root / "memloc" / "__init__.py").write_text("")
    for name, text in modules.items():
        (root / "memloc" / f"{name}.py").write_text(text)


MEASURE = '''"""Computes a stored result."""
from memloc.helper import double


def measure(x):
    from memloc.late import offset  # imported inside a function: still a dependency

    return double(x) + offset
'''
HELPER = '''"""Helper."""


def double(x):
    """Twice x."""
    return 2 * x
'''


def test_editing_a_dependency_invalidates_and_anything_else_does_not(tmp_path):
    _package(
        tmp_path,
        measure=MEASURE,
        helper=HELPER,
        late="offset = 1\n",
        other="def unrelated():\n    return 0\n",
        encoder="class Encoder:\n    def forward(self, x):\n        return x\n",
    )
    assert F.closure("memloc.measure", root=tmp_path) == [
        "memloc.helper",
        "memloc.late",
        "memloc.measure",
    ]
    Encoder = type("Encoder", (), {"__module__": "memloc.encoder"})  # an object's module counts
    assert "memloc.encoder" in F.closure("memloc.measure", Encoder(), root=tmp_path)

    def key():
        return F.fingerprint("memloc.measure", Encoder(), root=tmp_path)

    base = key()
    # A module outside the closure, a docstring, a comment: the stored result stays valid.
    (tmp_path / "memloc" / "other.py").write_text("def unrelated():\n    return 1\n")
    (tmp_path / "memloc" / "helper.py").write_text(
        HELPER.replace('"""Twice x."""', '"""x, doubled."""  # why: the paper\'s factor')
    )
    assert key() == base
    # A function the computation runs: invalidated, whether imported or handed in as an object.
    (tmp_path / "memloc" / "helper.py").write_text(HELPER.replace("2 * x", "3 * x"))
    changed = key()
    assert changed != base
    (tmp_path / "memloc" / "encoder.py").write_text(
        "class Encoder:\n    def forward(self, x):\n        return -x\n"
    )
    assert key() != changed
    before = key()
    (tmp_path / "memloc" / "late.py").write_text("offset = 2\n")
    assert key() != before


def test_the_real_stores_depend_on_what_computes_them_not_on_the_book():
    layers = F.closure("memloc.experiments.layers", create("resnet9"))
    assert {"memloc.metrics.layermem", "memloc.activations", "memloc.models.resnet9"} <= set(layers)
    assert not {"memloc.book", "memloc.figures", "memloc.cli", "memloc.report"} & set(layers)
    units = F.closure("memloc.metrics.unitmem", "memloc.augment", create("vit_tiny", depth=2))
    assert {"memloc.augment", "memloc.models.vit"} <= set(units)
    assert "memloc.experiments.layers" not in units
    assert set(F.everything()) >= set(layers) | set(units)
