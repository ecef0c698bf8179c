"""The export is parsed by ijson's C backend: the pure-Python fallback ijson picks silently when
the compiled one is missing is ~20 times slower and would dominate a 250,000-product import."""
from __future__ import annotations

from syncops.cardtrader import export


def test_export_parser_is_ijsons_c_backend():
    assert export.IJSON_BACKEND == "yajl2_c"
