"""Command-line spelling shared by the CLI and the sweep runner (which writes each run's command line)."""

from __future__ import annotations

from metarl.errors import ConfigError

# Flags of the outer loop's settings before they became one field: --es.sigma, --metagrad.lr (= --outer.sigma, ...).
LEGACY_OUTER_PREFIXES = {"--es.": "es", "--metagrad.": "metagrad"}


def outer_args(args: list[str]) -> list[str]:
    """Meta-train arguments in tyro's order: the outer loop as its subcommand (``outer:NAME``) after every other
    flag, then the loop's own flags (``--outer.x``). Also accepts the flags scripts and sweeps used before the
    loops became a registry: ``--outer NAME`` and ``--es.x`` / ``--metagrad.x``."""
    rest, own, name, i = [], [], None, 0
    implied = None
    while i < len(args):
        arg = args[i]
        if arg == "--outer" or arg.startswith("--outer="):
            value = arg.split("=", 1)[1] if "=" in arg else (args[i + 1] if i + 1 < len(args) else "")
            i += 1 if "=" in arg else 2
            if not value or value.startswith("-"):
                raise ConfigError("--outer: needs an outer loop's name (see `metarl list`)")
            name = _same_loop(name, value, arg)
            continue
        if arg.startswith("outer:"):
            name = _same_loop(name, arg.split(":", 1)[1], arg)
            i += 1
            continue
        legacy = next((prefix for prefix in LEGACY_OUTER_PREFIXES if arg.startswith(prefix)), None)
        if legacy or arg.startswith("--outer."):
            if legacy:
                implied = _same_loop(implied, LEGACY_OUTER_PREFIXES[legacy], arg)
                arg = "--outer." + arg[len(legacy):]
            own.append(arg)
            i += 1
            while "=" not in arg and i < len(args) and not args[i].startswith("--") and not args[i].startswith("outer:"):
                own.append(args[i])
                i += 1
            continue
        rest.append(arg)
        i += 1
    if implied is not None:
        name = _same_loop(name, implied, f"--{implied}.*")
    if name is None:
        return rest + own if not own else rest + ["outer:es"] + own
    helps = [a for a in rest if a in ("-h", "--help")]
    return [a for a in rest if a not in helps] + [f"outer:{name}"] + own + helps


def _same_loop(current: str | None, name: str, flag: str) -> str:
    if current is not None and current != name:
        raise ConfigError(f"{flag}: names outer loop {name!r}, but the command already chose {current!r}")
    return name
