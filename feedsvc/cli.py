"""Every `flask` command, registered in one list; each is defined beside the code it drives.

A command's module is imported when the CLI first asks for the command (click's lazily loaded
subcommands: https://click.palletsprojects.com/en/stable/complex/#lazily-loading-subcommands). A
server worker builds the same app and never runs one: importing them all with the app (the static
mirror, `validate` with its grammars) cost every worker 3.5 MiB RSS (bench row worker-rss-1m).
"""
from importlib import import_module

import click
from flask import Flask
from flask.cli import AppGroup

# name -> "module:attribute" of the command
COMMANDS = {
    "init-db": "feedsvc.web.db:init_db_command",
    "import-articles": "feedsvc.web.db:import_articles_command",
    "rename-scope": "feedsvc.web.db:rename_scope_command",
    "media": "feedsvc.web.db:media_cli",
    "partners": "feedsvc.ops.partners:cli",
    "websub": "feedsvc.publish.websub:websub_cli",
    "schedule": "feedsvc.publish.schedule:schedule_cli",
    "export": "feedsvc.publish.mirror:export_command",
    "validate": "feedsvc.validate:validate_command",
}


class LazyGroup(AppGroup):
    """The app's command group, importing each of COMMANDS when it is first looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name in COMMANDS:
            module, attribute = COMMANDS[cmd_name].split(":")
            found = getattr(import_module(module), attribute)
            if found.name != cmd_name:
                raise RuntimeError(f"feedsvc.cli.COMMANDS names {COMMANDS[cmd_name]} {cmd_name!r}; it is {found.name!r}")
            self.add_command(found)
        return found


def register(app: Flask) -> None:
    group = LazyGroup(app.cli.name)
    group.commands.update(app.cli.commands)   # those the blueprints registered
    app.cli = group
