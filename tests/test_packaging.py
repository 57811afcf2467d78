"""A sub-package without __init__.py works in an editable install but is left out of a wheel."""

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "metarl"


def test_every_folder_with_python_code_is_a_package():
    folders = {p.parent for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    missing = sorted(str(f.relative_to(PACKAGE.parent)) for f in folders if not (f / "__init__.py").is_file())
    assert not missing, f"add __init__.py to: {missing}"


def test_cuda_extras_pin_jaxs_own_cuda_extra_at_the_base_jax_range():
    """`pip install -e ".[cuda12]"` / `".[cuda13]"` must resolve the CUDA plugin of the jax that the base
    dependency allows (jax's own extra pins jax-cudaN-plugin to its jaxlib); a drifted range would pull a
    newer jax than the CPU install, the one `tests/test_no_deadlock.py` guards against."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]
    base = {r.name: r for r in map(Requirement, project["dependencies"])}
    for cuda in ("cuda12", "cuda13"):
        extra = [Requirement(r) for r in project["optional-dependencies"][cuda]]
        assert [r.name for r in extra] == ["jax"], extra
        assert extra[0].extras == {cuda}
        assert extra[0].specifier == base["jax"].specifier == base["jaxlib"].specifier
