"""The `dolmen ui` command: check where it binds, then serve until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import sys

from dolmen.cli.plumbing import EXIT_OK, db_path, reader


def cmd_ui(args: argparse.Namespace) -> int:
    import uvicorn

    from dolmen.cli.ui.app import UiConfig, build_app
    from dolmen.cli.ui.guard import require_token_for

    token = args.token or os.environ.get("DOLMEN_UI_TOKEN") or None
    try:
        require_token_for(args.host, token)
    except ValueError as exc:
        from dolmen.runtime.errors import DolmenError

        raise DolmenError(str(exc)) from None
    with reader(args):  # a missing or foreign file is refused now, not on the first page
        pass
    path = os.path.abspath(db_path(args))

    def client() -> object:
        from dolmen.client import Client

        return Client(path, address=args.address)

    config = UiConfig(path, token=token, read_only=args.read_only, client_factory=client)
    where = f"http://{args.host}:{args.port}/"
    print(f"dolmen: UI for {path} at {where}", file=sys.stderr)
    try:
        uvicorn.run(build_app(config), host=args.host, port=args.port, log_level="warning")
    finally:
        if config.has_client():
            config.client().close()
    return EXIT_OK
