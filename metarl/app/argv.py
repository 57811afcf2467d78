"""Command-line spelling of meta-train's outer loop, shared by the CLI and the sweep runner."""

from __future__ import annotations

from metarl.errors import ConfigError


def outer_args(args: list[str]) -> list[str]:
    """Meta-train arguments in tyro's order: the outer loop as its subcommand (``outer:NAME``) after every other
    flag, then the loop's own flags (``--outer.x``), wherever the user wrote them."""
    rest, own, name, i = [], [], None, 0
    while i < len(args):
        arg = args[i]
        if arg == "--outer" or arg.startswith("--outer="):
            raise ConfigError(f"{arg}: the outer loop is a subcommand: write outer:NAME (e.g. outer:metagrad; see `metarl list`)")
        if arg.startswith("outer:"):
            name = _same_loop(name, arg.split(":", 1)[1], arg)
            i += 1
            continue
        if arg.startswith("--outer."):
            own.append(arg)
            i += 1
            while "=" not in arg and i < len(args) and not args[i].startswith("--") and not args[i].startswith("outer:"):
                own.append(args[i])
                i += 1
            continue
        rest.append(arg)
        i += 1
    if name is None:
        return rest + own if not own else rest + ["outer:es"] + own
    helps = [a for a in rest if a in ("-h", "--help")]
    return [a for a in rest if a not in helps] + [f"outer:{name}"] + own + helps


def _same_loop(current: str | None, name: str, flag: str) -> str:
    if current is not None and current != name:
        raise ConfigError(f"{flag}: names outer loop {name!r}, but the command already chose {current!r}")
    return name


def flag_value(args: list[str], flag: str) -> str | None:
    """The value of ``--flag X`` or ``--flag=X`` in ``args`` (last one wins), else None."""
    value = None
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value
