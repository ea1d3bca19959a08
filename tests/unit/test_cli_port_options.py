"""Every port option of the command line (erpsync serve, the sandboxes, the demo) says what listens there and its default."""

from __future__ import annotations

import argparse

from erpsync.cli import build_parser


def _port_options(parser: argparse.ArgumentParser, prog: str = "erpsync"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _port_options(sub, f"{prog} {name}")
        elif any(opt.endswith("port") for opt in action.option_strings):
            yield prog, action


def test_every_port_option_has_help_naming_its_default() -> None:
    found = list(_port_options(build_parser()))
    names = {f"{prog} {action.option_strings[0]}" for prog, action in found}
    assert {"erpsync serve --port", "erpsync demo --prefect-port", "erpsync sandbox erp --port",
            "erpsync sandbox shop --port"} <= names
    for prog, action in found:
        where = f"{prog} {action.option_strings[0]}"
        assert action.default is not None, f"{where} has no default"
        assert action.help and len(action.help) > 12, f"{where} has no help text"
        assert "default" in action.help, f"{where}: the help does not show the default"
        assert "%(default)s" in action.help or str(action.default) in action.help, where
