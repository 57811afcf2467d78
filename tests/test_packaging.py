"""A sub-package without __init__.py works in an editable install but is left out of a wheel."""

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "metarl"


def test_every_folder_with_python_code_is_a_package():
    folders = {p.parent for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    missing = sorted(str(f.relative_to(PACKAGE.parent)) for f in folders if not (f / "__init__.py").is_file())
    assert not missing, f"add __init__.py to: {missing}"
