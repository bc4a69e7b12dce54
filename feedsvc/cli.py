"""Every `flask` command, registered in one list; each is defined beside the code it drives."""
from flask import Flask

from feedsvc.ops.partners import cli as partners_cli
from feedsvc.publish.mirror import export_command
from feedsvc.publish.schedule import schedule_cli
from feedsvc.publish.websub import websub_cli
from feedsvc.validate import validate_command
from feedsvc.web.db import import_articles_command, init_db_command, media_cli, rename_scope_command

COMMANDS = (
    init_db_command,
    import_articles_command,
    rename_scope_command,
    media_cli,
    partners_cli,
    websub_cli,
    schedule_cli,
    export_command,
    validate_command,
)


def register(app: Flask) -> None:
    for command in COMMANDS:
        app.cli.add_command(command)
