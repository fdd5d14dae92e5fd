"""`korgwatch serve`: the review page on this machine (or, with a token, on the network)."""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path
from typing import Annotated, Any

import typer

from korgwatch.paths import config_dir
from korgwatch.store import DbOption

TOKEN_ENV = "KORGWATCH_REVIEW_TOKEN"


def review_token(token_file: Path | None = None) -> str | None:
    """The review password: `KORGWATCH_REVIEW_TOKEN`, else the first line of `token_file`, else None."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token and token_file is not None:
        token = token_file.read_text(encoding="utf-8").strip().splitlines()[0].strip() if token_file.exists() else ""
    return token or None


def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on; anything but loopback needs a token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    reviewer: Annotated[
        str | None, typer.Option("--reviewer", "-r", help="Name for the review log (default: your login name).")
    ] = None,
    token_file: Annotated[
        Path | None, typer.Option(help=f"File holding the review password (or set {TOKEN_ENV}).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Rules folder (default: KORGWATCH_CONFIG or the shipped config/).")
    ] = None,
    remote_photos: Annotated[
        bool,
        typer.Option(
            "--remote-photos",
            help="When a listing has no kept photo, let your browser load its photos from the marketplace "
            "(the page's CSP then allows http(s) images; by default only kept photos show, others as links).",
        ),
    ] = False,
) -> None:
    """Serve the review queue: open flags, listings with their serials highlighted, one-key decisions.

    The store must already hold korgwatch's data (serve never creates one); the URL is printed once the port
    is bound. Example: korgwatch serve --db korgwatch.sqlite --port 8000  (then open http://127.0.0.1:8000)
    """
    import getpass

    from db.engine import StoreError
    from korgwatch.listen import ListenError, bind
    from korgwatch.store import open_store, resolve_store
    from pipeline.rules import RulesError, load_rules
    from review.app import LOOPBACK_HOSTS, ReviewConfig, create_app, is_loopback
    from review.auth import weak_token_reason

    token = review_token(token_file)
    loopback = is_loopback(host)
    if not loopback and token is None:
        typer.echo(
            f"refusing to serve on {host}: anyone on the network could decide flags. "
            f"Set {TOKEN_ENV} (or --token-file) to require a password, or use --host 127.0.0.1.",
            err=True,
        )
        raise typer.Exit(2)
    weak = weak_token_reason(token) if token is not None and not loopback else None
    if weak:
        typer.echo(
            f"refusing to serve on {host}: {weak}. Use a long random one, e.g. {TOKEN_ENV}={secrets.token_urlsafe(24)}",
            err=True,
        )
        raise typer.Exit(2)
    try:
        rules = load_rules(config or config_dir())
    except RulesError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    from korgwatch.notify.config import NotifyConfigError, load_notify

    try:
        notify = load_notify()  # which feeds are public, and the page's public address for their links
    except NotifyConfigError as exc:
        typer.echo("\n".join(f"error: {p}" for p in exc.problems), err=True)
        raise typer.Exit(2) from None
    try:
        store = resolve_store(db)
        with open_store(store, "read"):
            pass
    except StoreError as exc:
        typer.echo(f"store: {exc}", err=True)
        raise typer.Exit(2) from None
    review_config = ReviewConfig(
        public_feeds=notify.public_feeds,
        public_base_url=notify.public_base_url,
        db_url=store.url,
        rules=rules,
        reviewer=reviewer or getpass.getuser(),
        token=token,
        # On loopback, refuse other Host headers: a web page cannot reach us through DNS rebinding.
        allowed_hosts=(*LOOPBACK_HOSTS, host.strip("[]")) if loopback else None,
        remote_photos=remote_photos,
    )
    app = create_app(review_config)
    try:
        sock = bind(host, port)
    except ListenError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    bound_port = sock.getsockname()[1]
    where = f"[{host.strip('[]')}]" if ":" in host else host
    typer.echo(
        f"korgwatch review of {store.describe()} on http://{where}:{bound_port}/"
        + (" (password required)" if token else ""),
        err=True,
    )
    try:
        run_server(app, sock)
    finally:
        sock.close()


def run_server(app: Any, sock: socket.socket) -> None:
    """Serve `app` on an already-bound socket until Ctrl-C (so the announced URL is the one listening)."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", server_header=False, proxy_headers=False)
    uvicorn.Server(config).run(sockets=[sock])


def register(app: typer.Typer) -> None:
    """Add `serve` to the korgwatch command line."""
    app.command("serve")(serve)
