"""`emailexport`: import a workspace, run exports on the embedded default, show records.

It behaves like the click tools users know: a usage error (unknown command, missing or bad
option) prints click's usage message and exits 2, the bare command prints the help and exits 0,
`--version` prints the version. Every user-facing failure is an `EmailExportError` printed as a
message (exit 2); an unexpected exception is reported in one line (exit 1) unless
`EMAILEXPORT_DEBUG=1` asks for the traceback. All of that lives in `EmailExportGroup.main`, so
`typer.testing.CliRunner` and the installed script behave the same.

Output rules: results go to stdout (with `--json`, exactly one JSON document), everything else
(progress, status lines, errors) to stderr; text that comes from the user or the data is escaped
before rich sees it (`[[tag:x]]` is not markup); nothing is wrapped when soft-wrapping would cut
a path or URL (`soft_wrap=True` on both consoles).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

try:  # typer 0.2x vendors its own click: its exceptions and classes are the ones raised here
    from typer import _click as click
except ImportError:  # pragma: no cover - older typer runs on click itself
    import click  # type: ignore[no-redef]

from emailexport.bundle import import_bundle, load_bundle, read_bundle_file
from emailexport.errors import EmailExportError, NotFoundError, ValidationFailed
from emailexport.images.cli import images_app
from emailexport.models import ExportRecord
from emailexport.runtime import open_store
from emailexport.validation import validate_export_request

__all__ = ["app", "main"]

ExportType = Literal["html", "json", "pdf", "connector"]  # shown as choices in --help, checked by click
ImageMode = Literal["use_cdn", "include_in_zip", "use_cdn_connector"]
Status = Literal["in_progress", "completed", "failed"]


def _usage_pieces(command: click.Command, ctx: click.Context) -> list[str]:
    """Click's own usage line (`show [OPTIONS] EXPORT_ID`), not typer's `{export_id}`."""
    pieces = [command.options_metavar] if command.options_metavar else []
    for param in command.get_params(ctx):
        if param.param_type_name == "argument":
            name = (param.metavar or param.name or "arg").upper() + ("..." if param.nargs != 1 else "")
            pieces.append(name if param.required else f"[{name}]")
    return pieces


class _ClickUsageCommand(TyperCommand):
    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return _usage_pieces(self, ctx)


class _ClickUsageGroup(TyperGroup):
    """A group whose commands (also those added later by `@app.command`) print click's plain help
    and usage: no `<bool>` on flags, no `{arg}` in usage lines, no boxes in a pipe."""

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return [*_usage_pieces(self, ctx), self.subcommand_metavar]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if type(command) is TyperCommand:
            command.__class__ = _ClickUsageCommand
        elif type(command) is TyperGroup:
            command.__class__ = _ClickUsageGroup
        if isinstance(command, TyperCommand | TyperGroup):
            command.rich_markup_mode = None
        return command


class EmailExportGroup(_ClickUsageGroup):
    """The top-level command: turns every outcome into a message and an exit code."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,  # type: ignore[override]
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        code = _run(lambda: super(EmailExportGroup, self).main(
            args=args, prog_name=prog_name or "emailexport", complete_var=complete_var, standalone_mode=False,
            **extra))
        if standalone_mode:
            sys.exit(code)
        return code


def _run(invoke: Any) -> int:
    try:
        result = invoke()
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help())  # a bare group: its help, like `git` or `pip` without arguments
        return 0
    except click.ClickException as exc:  # usage errors: click's usage message, exit 2
        exc.show()
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except EmailExportError as exc:
        _fail(exc)
        return 2
    except (typer.Abort, KeyboardInterrupt):
        err.print("Aborted.")
        return 130
    except Exception as exc:  # the last line of defence: no traceback at a user
        if os.environ.get("EMAILEXPORT_DEBUG"):
            raise
        err.print(f"[bold red]Internal error:[/] {escape(type(exc).__name__)}: {escape(str(exc))} "
                  "(set EMAILEXPORT_DEBUG=1 for details)")
        return 1
    return result if isinstance(result, int) else 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("emailexport")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


app = typer.Typer(cls=EmailExportGroup, no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  help=__doc__.splitlines()[0])
workspace_app = typer.Typer(cls=_ClickUsageGroup, no_args_is_help=True, rich_markup_mode=None,
                            help="Workspace data.")
app.add_typer(workspace_app, name="workspace")
token_app = typer.Typer(cls=_ClickUsageGroup, no_args_is_help=True, rich_markup_mode=None, help="API tokens.")
app.add_typer(token_app, name="token")
console = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

EXAMPLE_BUNDLE = Path(__file__).resolve().parents[1] / "examples" / "workspace.yaml"


def _show_version(value: bool) -> None:
    if value:
        click.echo(f"emailexport {_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Import a workspace, run exports on the embedded default, show records."""


def _fail(exc: EmailExportError) -> None:
    err.print(f"[bold red]Error:[/] {escape(str(exc.args[0] if exc.args else exc))}")
    if isinstance(exc, ValidationFailed):
        for path, messages in exc.errors.items():
            for message in messages:
                err.print(f"  [red]{escape(path)}[/]: {escape(message)}")


@workspace_app.command("import")
def workspace_import(file: Annotated[Path, typer.Argument(metavar="FILE",
                                                           help="bundle file (.yaml, .yml or .json)")]) -> None:
    """Import a workspace bundle (insert or replace every document by id)."""
    bundle = load_bundle(read_bundle_file(file))
    summary = import_bundle(open_store(), bundle, base_dir=file.resolve().parent)
    counts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in summary.counts.items() if n)
    console.print(f"Imported workspace {summary.workspace_id} from {escape(str(file))}: {counts}")


def run_export(workspace_id: int, body: dict[str, Any]) -> ExportRecord:
    """Validate a Create Export body, store the record, run the flow here, return the final record."""
    from emailexport.launch import run_export_flow  # Prefect loads on first use, not for `--help`

    store = open_store()
    if store.workspace(workspace_id) is None:
        raise NotFoundError(f"workspace {workspace_id} not found (import a bundle that defines it with "
                            "`emailexport workspace import FILE`)")
    checked = validate_export_request(store, workspace_id, body)
    request = checked.request
    record = store.create_export(
        workspace=checked.workspace, email=checked.email, export_type=request.export_type,
        options=request.options, connector_id=request.connector_id, cdn_connector_id=request.cdn_connector_id,
        dynamic_content_profile_id=request.dynamic_content_profile_id,
        integration_name=checked.integration_name,
    )
    err.print(f"Export {record.id} created: {request.export_type} of {escape(repr(checked.email.name))}, "
              f"{len(request.options.locales)} locale(s); running flow export-{record.id}")
    with _locale_progress(record.id, len(request.options.locales)):
        run_export_flow(record.id)  # a run that cannot start fails the record with the reason
    return store.require_export(record.id)


@contextmanager
def _prefect_logs_through(target: Console) -> Iterator[None]:
    """Prefect's console log lines printed through `target` while it shows a live progress bar,
    so a log line lands above the bar instead of tearing it (rich redraws the bar below)."""
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in list(logging.root.manager.loggerDict))]
    handlers = {h for logger in loggers for h in getattr(logger, "handlers", [])
                if isinstance(h, PrefectConsoleHandler)}
    saved = {h: h.console for h in handlers}
    for handler in handlers:
        handler.console = target
    try:
        yield
    finally:
        for handler, original in saved.items():
            handler.console = original


@contextmanager
def _locale_progress(export_id: int, total: int) -> Iterator[None]:
    """A progress bar of the export's locales on stderr, like `bulk`'s rows."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from flows.export_email import set_locale_listener

    # Its own console without markup: Prefect's log lines pass through it as they are.
    bar_console = Console(stderr=True, soft_wrap=True, highlight=False, markup=False)
    columns = (SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=bar_console) as progress:
        bar = progress.add_task(f"export {export_id}: preparing", total=total)

        def on_locale(locale: str | None, done: int, count: int) -> None:
            text = f"export {export_id}: " + ("rendering" if locale is None else
                                              f"{locale} rendered" if done < count else "delivering")
            progress.update(bar, completed=done, total=count, description=text)

        set_locale_listener(on_locale)
        try:
            with _prefect_logs_through(bar_console):
                yield
        finally:
            set_locale_listener(None)
            progress.update(bar, description=f"export {export_id}: done")


def print_record(record: ExportRecord, as_json: bool = False) -> None:
    if as_json:
        print(record.model_dump_json(indent=2))  # exactly the JSON document, no rich in between
        return
    colour = {"completed": "green", "failed": "red"}.get(record.status, "yellow")
    table = Table(title=f"Export {record.id}: {escape(record.email.name)} [{colour}]{record.status}[/]")
    pushed = record.export_type == "connector"
    for column in ("locale", "status", "resource" if pushed else "size", "warnings", "errors"):
        table.add_column(column)
    for locale in record.options.locales:
        outcome = record.results.get(locale)
        warnings = record.warnings.get(locale) or []
        errors = record.export_errors.get(locale) or []
        if pushed:
            third = (outcome.resource_id or "-") if outcome else "-"
        else:
            third = f"{outcome.size_bytes:,} B" if outcome and outcome.size_bytes else "-"
        table.add_row(*(Text(str(cell)) for cell in (locale, outcome.status if outcome else "-", third,
                                                     "\n".join(warnings), "\n".join(errors))))
    console.print(table)
    for error in record.export_errors.get("base") or []:
        console.print(f"[red]error:[/] {escape(error)}")
    opened = f"open in {record.integration_name}" if record.integration_name else "open"
    for label, url in (("zip", record.download_zip_url), ("json", record.download_json_url),
                       (opened, record.open_in_integration_url)):
        if url:
            console.print(f"[bold]{escape(label)}:[/] {escape(url)}")


@app.command("export")
def export(
    email: Annotated[int, typer.Option("--email", help="id of the email to export")],
    export_type: Annotated[ExportType, typer.Option("--type", help="what to produce")] = "html",
    locales: Annotated[str, typer.Option("--locales", help="comma-separated, e.g. en-US,de-DE; default: all")] = "",
    profile: Annotated[str | None, typer.Option("--profile", help="dynamic content profile id")] = None,
    minify: Annotated[bool, typer.Option("--minify", help="minify the HTML")] = False,
    previews: Annotated[bool, typer.Option("--previews", help="add browser screenshots of every locale and a "
                                           "gallery page to the zip (html and pdf exports)")] = False,
    connector: Annotated[int | None, typer.Option("--connector", help="ESP connector id (--type connector)")] = None,
    image_mode: Annotated[ImageMode, typer.Option("--image-mode", help="where library images go")] = "use_cdn",
    cdn_connector: Annotated[int | None, typer.Option("--cdn-connector", help="CDN connector id")] = None,
    update_previous: Annotated[bool, typer.Option("--update-previous",
                                                  help="update the ESP resources of the last export")] = False,
    workspace: Annotated[int, typer.Option("--workspace", help="workspace id")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="print only the record, as JSON, on stdout")] = False,
) -> None:
    """Run one export on the embedded default and print its record and outputs.

    Exit codes: 0 completed, 2 bad input (nothing is created), 3 the export failed.
    """
    from emailexport.models import Email

    chosen = [loc.strip() for loc in locales.split(",") if loc.strip()]
    defaulted = not chosen
    if defaulted:
        found = open_store().get(workspace, Email, email) if open_store().workspace(workspace) else None
        chosen = list(found.locales) if found else []
    options: dict[str, object] = {"locales": chosen, "minify_html": minify, "image_mode": image_mode}
    if update_previous:
        options["update_previous_export"] = True
    if previews:
        options["previews"] = True
    body = {"email_id": email, "export_type": export_type, "dynamic_content_profile_id": profile,
            "connector_id": connector, "cdn_connector_id": cdn_connector, "options": options}
    try:
        record = run_export(workspace, body)
    except ValidationFailed as exc:
        if defaulted and "email_id" in exc.errors:
            exc.errors.pop("options.locales", None)  # the user named no locales: the email's were unknowable
        raise
    print_record(record, as_json)
    if record.status != "completed":
        raise typer.Exit(3)


@app.command("bulk")
def bulk(
    file: Annotated[str, typer.Argument(metavar="FILE", help="CSV file: a path or a storage URL (s3://...)")],
    force: Annotated[bool, typer.Option("--force", help="export rows again even if their export completed")] = False,
    concurrency: Annotated[int | None, typer.Option("--concurrency", help="exports at once (local mode)")] = None,
) -> None:
    """Export every row of a CSV file (docs/contract.md, CSV bulk mode); exit 1 when a row failed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    from emailexport.runtime import ensure_prefect_api
    from flows.bulk_export import BulkSummary, bulk_export, set_progress_listener

    ensure_prefect_api()  # one embedded server for the whole bulk run, started under the home's lock
    counts = dict.fromkeys(("validated", "created", "completed", "failed", "skipped", "invalid"), 0)
    columns = (SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn())
    # Its own console without markup, so Prefect's log lines can pass through it (see _locale_progress).
    bar_console = Console(stderr=True, soft_wrap=True, highlight=False, markup=False)
    with Progress(*columns, console=bar_console, transient=False) as progress, _prefect_logs_through(bar_console):
        bar = progress.add_task("reading", total=None)

        def on_event(event: str) -> None:
            counts[event] += 1
            done = counts["completed"] + counts["failed"]
            progress.update(bar, total=max(counts["created"], 1), completed=done, description=(
                f"{counts['validated']} validated, {counts['created']} runs created, {counts['completed']} completed, "
                f"{counts['failed']} failed, {counts['skipped']} skipped, {counts['invalid']} invalid"))

        set_progress_listener(on_event)
        try:
            state = bulk_export(csv_url=file, force=force, concurrency=concurrency, return_state=True)
        finally:
            set_progress_listener(None)
    summary = state.result(raise_on_failure=False)
    if not isinstance(summary, BulkSummary):
        raise EmailExportError(state.message or "the bulk export failed")
    for warning in summary.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    for row in summary.rows:
        if row.status in ("invalid", "failed", "running"):
            err.print(f"[red]row {row.row}[/] ({row.status}{f', export {row.export_id}' if row.export_id else ''}):")
            for error in row.errors:
                err.print(f"  {escape(error)}")
    console.print(escape(summary.line()))
    console.print("Summary: the bulk-export-rows and bulk-export-summary artifacts in the Prefect UI"
                  + (f"; every row in {escape(summary.summary_url)}" if summary.summary_url else ""))
    if not summary.ok:
        raise typer.Exit(1)


@app.command("show")
def show(
    export_id: Annotated[int, typer.Argument(metavar="EXPORT_ID", help="the export's id (see `emailexport list`)")],
    as_json: Annotated[bool, typer.Option("--json", help="print the record as JSON, as the API returns it")] = False,
) -> None:
    """Print an export record: its locales, errors, warnings and where the outputs are."""
    print_record(open_store().require_export(export_id), as_json)


@app.command("list")
def list_exports(
    status: Annotated[Status | None, typer.Option("--status", help="only records with this status")] = None,
    email: Annotated[int | None, typer.Option("--email", help="only exports of this email id")] = None,
    workspace: Annotated[int, typer.Option("--workspace", help="workspace id")] = 1,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="records per page")] = 25,
    page: Annotated[int, typer.Option("--page", min=1, help="page number")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="print the page as JSON, as the API lists exports")] = False,
) -> None:
    """List export records, newest first."""
    store = open_store()
    if store.workspace(workspace) is None:
        raise NotFoundError(f"workspace {workspace} not found")
    records, total = store.list_exports(workspace, page=page, per=limit, status=status, email_id=email)
    if as_json:
        results = [json.loads(r.model_dump_json()) for r in records]
        print(json.dumps({"results": results, "pagination": {"per": limit, "page": page, "total": total}}, indent=2))
        return
    if not records:
        err.print(f"No exports match (workspace {workspace}).")
        return
    table = Table(title=f"Exports of workspace {workspace}: {len(records)} of {total}, newest first")
    for column in ("id", "created", "status", "type", "email", "locales", "errors"):
        table.add_column(column)
    for r in records:
        errors = sum(len(v or []) for v in r.export_errors.values())
        table.add_row(*(Text(str(cell)) for cell in (
            r.id, r.created_at.strftime("%Y-%m-%d %H:%M:%S") if hasattr(r.created_at, "strftime") else r.created_at,
            r.status, r.export_type, f"{r.email.id} {r.email.name}", ",".join(r.options.locales), errors or "")))
    console.print(table)


@app.command("demo")
def demo(bundle: Annotated[Path, typer.Option(help="workspace bundle to import")] = EXAMPLE_BUNDLE) -> None:
    """Import the example workspace, then export its email as html and as json in all its locales, and
    as html with its images in the zip (include_in_zip: opens offline with real images)."""
    from emailexport.bundle_model import WorkspaceBundle

    parsed: WorkspaceBundle = load_bundle(read_bundle_file(bundle))
    import_bundle(open_store(), parsed, base_dir=bundle.resolve().parent)
    console.rule(f"Imported {escape(bundle.name)}: workspace {parsed.workspace.id}, {len(parsed.emails)} email(s)")
    email = parsed.emails[0]
    profile = parsed.dynamic_content_profiles[0].id if parsed.dynamic_content_profiles else None
    failed = False
    for export_type, image_mode in (("html", "use_cdn"), ("json", "use_cdn"), ("html", "include_in_zip")):
        console.rule(f"{export_type} export of {escape(repr(email.name))} ({', '.join(email.locales)}), "
                     f"images: {image_mode}")
        body = {"email_id": email.id, "export_type": export_type, "dynamic_content_profile_id": profile,
                "options": {"locales": list(email.locales), "image_mode": image_mode}}
        record = run_export(parsed.workspace.id, body)
        print_record(record)
        failed = failed or record.status != "completed"
    if failed:
        raise typer.Exit(3)


@token_app.command("create")
def token_create(
    workspace: Annotated[list[int], typer.Option("--workspace", metavar="ID",
                                                help="a workspace the token may use (repeatable)")],
    label: Annotated[str, typer.Option("--label", help="what the token is for")] = "",
    expires_in: Annotated[str | None, typer.Option(
        "--expires-in", help="lifetime such as 90d, 12h, 30m or 2w (default: no expiry)")] = None,
) -> None:
    """Create an API token for some workspaces and print it once (only its hash is stored)."""
    import secrets
    from datetime import UTC, datetime

    from emailexport.errors import NotFoundError

    store = open_store()
    unknown = [w for w in workspace if store.workspace(w) is None]
    if unknown:
        raise NotFoundError(f"unknown workspace(s): {', '.join(map(str, unknown))} (import them first)")
    lifetime = _duration(expires_in) if expires_in is not None else None
    expires_at = datetime.now(UTC) + lifetime if lifetime is not None else None
    token = secrets.token_urlsafe(32)
    token_id = store.add_token(token, workspace, label, expires_at=expires_at)
    until = f", expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ""
    err.print(f"Token {token_id} for workspace(s) {', '.join(map(str, workspace))}{until}; "
              "it is shown only this once:")
    print(token)


def _duration(text: str) -> timedelta:
    """`90d`, `12h`, `30m`, `45s`, `2w` -> a timedelta (a usage error otherwise)."""
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    value = text.strip().lower()
    if len(value) < 2 or value[-1] not in units or not value[:-1].isdigit() or int(value[:-1]) <= 0:
        raise ValidationFailed({"--expires-in": [f"{text!r} is not a lifetime like 90d, 12h, 30m or 2w"]},
                               "Invalid option")
    return timedelta(**{units[value[-1]]: int(value[:-1])})


@token_app.command("list")
def token_list() -> None:
    """List API tokens: id, label, workspaces, created, expires, status (never the token itself)."""
    table = Table("id", "label", "workspaces", "created (UTC)", "expires (UTC)", "status")
    for info in open_store().list_tokens():
        table.add_row(str(info.id), info.label, ", ".join(map(str, info.workspace_ids)),
                      f"{info.created_at:%Y-%m-%d %H:%M}" if info.created_at else "",
                      f"{info.expires_at:%Y-%m-%d %H:%M}" if info.expires_at else "never", info.status)
    console.print(table)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="the token's id (see `token list`)")]) -> None:
    """Revoke an API token: the API answers 401 to it from now on."""
    from emailexport.errors import NotFoundError

    if not open_store().revoke_token(token_id):
        raise NotFoundError(f"no token with id {token_id} (see `emailexport token list`)")
    err.print(f"Token {token_id} revoked.")


def _is_loopback(host: str) -> bool:
    """Whether `host` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="interface the API and the Prefect UI listen on")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(
        min=0, max=65535, show_default=False,
        help="API port; 0 = any free port; unset: 8000, or a free one when 8000 is taken")] = None,
    prefect_port: Annotated[int | None, typer.Option(
        min=0, max=65535, show_default=False,
        help="Prefect server port; 0 = any free port; unset: 4200, or a free one when 4200 is taken")] = None,
    postgres: Annotated[bool, typer.Option(
        "--postgres", help="the store and the Prefect server on a local PostgreSQL cluster in the data dir, "
                           "started and stopped with serve (needs Debian's postgresql)")] = False,
) -> None:
    """Run everything on this machine: a Prefect server, a runner for the deployments, the dispatcher
    and the API."""
    from emailexport.settings import get_settings

    settings = get_settings()
    data_dir = settings.data_dir.resolve()
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    cluster = _start_postgres(settings, data_dir) if postgres else None
    try:
        _serve(settings, data_dir, logs, host, port, prefect_port, cluster)
    finally:
        if cluster is not None:
            console.print("Stopping PostgreSQL ...")
            cluster.stop()


def _runner_niceness(settings: Any, store_url: str) -> int:
    """`EMAILEXPORT_RUNNER_NICENESS`, else 5 on a PostgreSQL store and 0 on SQLite: SQLite has one
    write lock, and a flow run holding it at a lower priority would make the API wait longer."""
    if settings.runner_niceness is not None:
        return settings.runner_niceness
    return 0 if store_url.startswith("sqlite") else 5


def _start_postgres(settings: Any, data_dir: Path) -> Any:
    """`serve --postgres`: the cluster is started before the supervisor becomes a subreaper, so its
    server is not a descendant the supervisor kills on the way out; it is stopped cleanly after."""
    from deployments.postgres import LocalPostgres

    if settings.database_url:
        raise EmailExportError("--postgres runs its own database: unset EMAILEXPORT_DATABASE_URL, or drop --postgres")
    cluster = LocalPostgres(data_dir / "postgres")
    console.print(f"Starting PostgreSQL (data: {cluster.data}) ...")
    cluster.start()
    console.print(f"PostgreSQL store: {cluster.store_url}", soft_wrap=True)
    return cluster


def _serve(settings: Any, data_dir: Path, logs: Path, host: str, port: int | None, prefect_port: int | None,
           cluster: Any) -> None:
    from deployments.supervisor import Child, Supervisor, free_port

    if cluster is not None:
        settings = settings.model_copy(update={"database_url": cluster.store_url})
    open_store(settings)  # migrate once here, not concurrently in the children
    if not _is_loopback(host):
        err.print(f"[bold yellow]Warning:[/] listening on {escape(host)}: the Prefect UI and its API on this address "
                  "have no authentication of their own (anyone who can reach the port can see and start runs). "
                  "Put them behind an authenticating proxy or a firewall, or bind 127.0.0.1.")
    api_port = port if port else free_port(host, None if port == 0 else 8000)
    pf_port = prefect_port if prefect_port else free_port(host, None if prefect_port == 0 else 4200)
    prefect_url = f"http://{host}:{pf_port}/api"
    (data_dir / "prefect-serve").mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "EMAILEXPORT_DATA_DIR": str(data_dir),
        # Its own home (server database): the embedded default's is `<data dir>/prefect`, and a CLI
        # export run beside `serve` starts an ephemeral server there; two servers on one SQLite file
        # would contend for its lock. The render cache (PREFECT_LOCAL_STORAGE_PATH) stays shared.
        "PREFECT_HOME": str(data_dir / "prefect-serve"),
        "PREFECT_API_URL": prefect_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_API_URL": prefect_url,
        # Prefect's minimum; the reconciler notices a lost run about 2 beats + 15 s after its last one.
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": os.environ.get("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "30"),
    }
    if cluster is not None:
        env["EMAILEXPORT_DATABASE_URL"] = cluster.store_url
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = cluster.prefect_url
    env.setdefault("EMAILEXPORT_PUBLIC_BASE_URL", f"http://{host}:{api_port}")
    # A local server is cheap to poll: a created run starts within ~2 s instead of Prefect's 10.
    env.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "2")
    bin_dir = Path(sys.executable).parent
    supervisor = Supervisor(env, say=lambda text: err.print(escape(text)))
    supervisor.install_signal_handlers()
    code = 0
    try:
        server_log = escape(str(logs / "prefect-server.log"))
        console.print(f"Starting the Prefect server on port {pf_port} (log: {server_log}) ...")
        supervisor.start(Child("Prefect server", [str(bin_dir / "prefect"), "server", "start", "--host", host,
                                                  "--port", str(pf_port)],
                               ready_url=f"{prefect_url}/health", log_file=logs / "prefect-server.log"))
        console.print(f"Starting the runner (log: {escape(str(logs / 'runner.log'))}) and the API ...")
        # The runner is ready once its deployment is on the server (a POST before that would be a 503).
        supervisor.start(Child("runner", [sys.executable, "-m", "deployments.serve"], log_file=logs / "runner.log",
                               ready_url=f"{prefect_url}/deployments/name/{settings.export_deployment}",
                               niceness=_runner_niceness(settings, env.get("EMAILEXPORT_DATABASE_URL")
                                                         or settings.resolved_database_url())))
        # The dispatcher creates the flow runs of accepted exports and runs the reconcile loop.
        supervisor.start(Child("dispatcher", [sys.executable, "-m", "emailexport.runs.dispatcher"],
                               log_file=logs / "dispatcher.log"))
        supervisor.start(Child("API", [sys.executable, "-m", "uvicorn", "--factory", "emailexport.api:create_app",
                                       "--host", host, "--port", str(api_port)],
                               ready_url=f"http://{host}:{api_port}/health", log_file=logs / "api.log"))
        if not supervisor.stopping.is_set():
            console.print(f"[bold green]Ready.[/] API docs: {escape(f'http://{host}:{api_port}/docs')}")
            console.print(f"Prefect UI: {escape(f'http://{host}:{pf_port}')}")
            console.print("Press Ctrl-C to stop.", soft_wrap=True)
            code = supervisor.watch()
    finally:
        console.print("Stopping ...")
        supervisor.stop()
        console.print("Stopped.")
    if code:
        raise typer.Exit(code)


@app.command("preview")
def preview(export_id: Annotated[int, typer.Argument(help="the export's id")]) -> None:
    """Unpack an export's preview gallery (made with --previews) and print where it is."""
    from emailexport.runtime import open_storage
    from emailexport.settings import get_settings
    from tasks.previews import extract_gallery

    record = open_store().require_export(export_id)
    index = extract_gallery(record, open_storage(), get_settings().data_dir / "previews" / str(export_id))
    console.print(f"Gallery of export {export_id}: {index.as_uri()}", soft_wrap=True, markup=False)


@app.command("transform")
def transform(
    file: Annotated[Path, typer.Argument(help="an HTML file (UTF-8), e.g. a template you already have")],
    minify: Annotated[bool, typer.Option("--minify", help="minify (what recipients read is kept)")] = False,
    preset: Annotated[str | None, typer.Option("--preset", help="template engine preset (ESP checks)")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="write the HTML here instead of to stdout")] = None,
) -> None:
    """Run the transform stage (inline CSS, minify, ESP syntax kept) on an HTML file; print its warnings."""
    from rich.markup import escape

    from emailexport.transform_file import TransformFileError, transform_file

    try:
        result = transform_file(file, minify=minify, preset=preset, out=out)
    except TransformFileError as exc:
        err.print(f"[bold red]Error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    for warning in result.warnings:
        err.print(f"[yellow]Warning:[/] {escape(warning)}")
    if out is None:
        sys.stdout.write(result.html)
    else:
        size = len(result.html.encode("utf-8"))
        err.print(f"Wrote {escape(str(out))} ({size} bytes, {len(result.warnings)} warnings)")


def _register_dispatcher() -> None:
    """`emailexport dispatcher` (issue 13): what `serve` runs as a child, for machines with workers."""

    @app.command("dispatcher")
    def dispatcher() -> None:
        """Create the flow runs of exports accepted by the API (the outbox) and fail exports whose flow
        runs died; runs until interrupted. `serve` runs one itself."""
        from emailexport.runs.dispatcher import run_dispatcher

        run_dispatcher()


_register_dispatcher()


def main() -> None:
    """Console entry point (`EmailExportGroup.main` does the error handling and exits)."""
    # The embedded Prefect server would otherwise try to send usage telemetry to the internet.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from emailexport.runtime import use_embedded_prefect

    # Prefect's home and cache in the data dir, not ~/.prefect, and a startup timeout fit for a
    # busy machine (EMAILEXPORT_PREFECT_STARTUP_TIMEOUT_SECONDS; issue 14).
    use_embedded_prefect()
    app(prog_name="emailexport")


app.add_typer(images_app, name="images")

if __name__ == "__main__":
    main()

