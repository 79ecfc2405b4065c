"""docs/cli.md, generated from the argument parser so that it cannot drift.

    python -m harness.cli_doc > docs/cli.md     # write it
    python -m harness.cli_doc --check           # exit 1 when docs/cli.md differs

The text is built from harness.cli.make_parser() without argparse's help
formatter, whose layout depends on the terminal's width and on the Python
version; paths under the repository are written relative to it.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path

from harness import cli, paths

DOC = Path("docs") / "cli.md"
WIDTH = 88  # usage lines are wrapped here (between arguments, never inside one)
REGENERATE = "python -m harness.cli_doc > docs/cli.md"
# an underscore that could open or close emphasis (not one inside a word)
EDGE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def _relative(text: str) -> str:
    """Paths of this checkout as paths relative to the repository."""
    root = str(paths.REPO)
    return text.replace(root + "/", "").replace(root, ".")


def _escape(text: str) -> str:
    """Markdown emphasis and HTML characters escaped outside `code spans`."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # even parts are outside backticks
        for ch in ("\\", "*", "<", ">", "|"):
            parts[i] = parts[i].replace(ch, "\\" + ch)
        parts[i] = EDGE_UNDERSCORE.sub(r"\\_", parts[i])
    return "`".join(parts)


def _help(action: argparse.Action) -> str:
    """The action's help text as argparse prints it (%% and %(default)s expanded)."""
    text = action.help or ""
    if "%" in text:
        text = text % dict(vars(action), prog="harness")
    return _relative(" ".join(text.split()))


def _metavar(action: argparse.Action) -> str:
    """The argument's metavar with its nargs, as argparse writes it in usage."""
    if action.metavar is not None:
        name = str(action.metavar)
    elif action.choices is not None:
        name = "{" + ",".join(str(c) for c in action.choices) + "}"
    elif action.option_strings:
        name = action.dest.upper()
    else:
        name = action.dest
    nargs = action.nargs
    if nargs is None:
        return name
    if nargs == argparse.OPTIONAL:
        return f"[{name}]"
    if nargs == argparse.ZERO_OR_MORE:
        return f"[{name} ...]"
    if nargs == argparse.ONE_OR_MORE:
        return f"{name} [{name} ...]"
    if nargs == argparse.REMAINDER:
        return "..."
    if isinstance(nargs, int):
        return " ".join([name] * nargs)
    return name


def _takes_value(action: argparse.Action) -> bool:
    return action.nargs != 0


def _invocation(action: argparse.Action) -> str:
    """`-t, --filter FILTERS` for an option, its metavar for a positional."""
    if not action.option_strings:
        return _metavar(action)
    names = ", ".join(action.option_strings)
    return f"{names} {_metavar(action)}" if _takes_value(action) else names


def _usage(parser: argparse.ArgumentParser) -> str:
    parts = []
    actions = parser._actions
    for action in [a for a in actions if a.option_strings]:
        if action.help == argparse.SUPPRESS:
            continue
        part = action.option_strings[0]
        if _takes_value(action):
            part += " " + _metavar(action)
        parts.append(part if action.required else f"[{part}]")
    parts += [_metavar(a) for a in actions if not a.option_strings]
    lead = f"usage: {parser.prog}"
    lines, line = [], lead
    for part in parts:
        if len(line) + 1 + len(part) > WIDTH and line.strip() != lead.strip():
            lines.append(line)
            line = " " * len(lead)
        line += " " + part
    lines.append(line)
    return "\n".join(lines)


def _default(action: argparse.Action) -> str | None:
    """ "default: X" where the help text does not say it already."""
    value = action.default
    if (value is None or value is False or value == [] or value == argparse.SUPPRESS
            or not _takes_value(action) or "default" in (action.help or "").lower()):
        return None
    return _relative(str(value))


def _item(action: argparse.Action) -> str:
    text = _escape(_help(action))
    default = _default(action)
    if default is not None:
        text = (text + " " if text else "") + f"(default: `{default}`)"
    line = f"- `{_invocation(action)}`" + (f": {text}" if text else "")
    return textwrap.fill(line, width=100, subsequent_indent="  ",
                         break_long_words=False, break_on_hyphens=False)


def _key(action: argparse.Action) -> tuple[tuple[str, ...], str | None, str]:
    return (tuple(action.option_strings), action.help, repr(action.default))


def _shared() -> tuple[list[argparse.Action], list[argparse.Action]]:
    """The options every pipeline verb takes (add_common) and every booting one (add_vm)."""
    common, vm = argparse.ArgumentParser(add_help=False), argparse.ArgumentParser(add_help=False)
    cli.add_common(common)
    cli.add_vm(vm)
    return common._actions, vm._actions


def _subparsers(ap: argparse.ArgumentParser) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    for action in ap._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise RuntimeError("the parser has no sub-commands")


def _epilog(parser: argparse.ArgumentParser) -> str:
    if parser.epilog == cli.EXIT_STATUS:
        return "Exit status: as for every verb (see the top of this page)."
    if parser.epilog:
        return _escape(_relative(parser.epilog))
    return "Exit status: not stated in this verb's `--help`."


def render() -> str:
    """docs/cli.md's text."""
    ap = cli.make_parser()
    sub = _subparsers(ap)
    # each verb's help as `harness --help` lists it (its --help prints the same text as
    # its description, but unexpanded: argparse expands %% in help texts only)
    helps = {a.dest: _help(a) for a in sub._choices_actions}
    common, vm = _shared()
    common_keys, vm_keys = {_key(a) for a in common}, {_key(a) for a in vm}

    out = [
        "# The command line",
        "",
        f"<!-- Generated by `{REGENERATE}` from harness/cli.py's make_parser(); "
        "do not edit. harness/tests/test_docs.py checks it. -->",
        "",
        _escape(_relative(" ".join((ap.description or "").split()))),
        "",
        "```",
        _usage(ap),
        "```",
        "",
        _escape(_relative(ap.epilog or "")),
        "",
        "| verb | what it does |",
        "|---|---|",
    ]
    for name in sub.choices:
        out.append(f"| [`{name}`](#harness-{name}) | {_escape(helps.get(name, ''))} |")

    out += ["", "## Options shared by verbs", "",
            "Every verb that works on a kernel tree (marked *common options* below) takes:", ""]
    out += [_item(a) for a in common]
    out += ["", "Every verb that boots a guest (marked *guest options* below) also takes:", ""]
    out += [_item(a) for a in vm]

    for name, parser in sub.choices.items():
        actions = [a for a in parser._actions if a.help != argparse.SUPPRESS]
        keys = {_key(a) for a in actions}
        has_common = common_keys <= keys
        has_vm = vm_keys <= keys
        skip = (common_keys if has_common else set()) | (vm_keys if has_vm else set())
        own = [a for a in actions if _key(a) not in skip and "-h" not in a.option_strings]
        out += ["", f"## harness {name}", ""]
        out += [_escape(helps.get(name, "")), "", "```", _usage(parser), "```", ""]
        shared = [label for label, flag in (("common options", has_common),
                                            ("guest options", has_vm)) if flag]
        if shared:
            out += ["Takes the " + " and the ".join(f"*{s}*" for s in shared) + ".", ""]
        if own:
            out += [_item(a) for a in own] + [""]
        out.append(_epilog(parser))
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.cli_doc",
                                 description="write docs/cli.md's text to stdout")
    ap.add_argument("--check", action="store_true",
                    help="compare with docs/cli.md instead: exit 1 when it differs")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        return 0 if paths.generated_is_current(paths.REPO / DOC, text, REGENERATE) else 1
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
