"""`emailexport`: import a workspace, run exports on the embedded default, show records.

Every user-facing failure is an `EmailExportError` printed as a message (exit 2); an unexpected
exception is reported in one line (exit 1) unless `EMAILEXPORT_DEBUG=1` asks for the traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from emailexport.bundle import import_bundle, load_bundle, read_bundle_file
from emailexport.errors import EmailExportError, ValidationFailed
from emailexport.models import ExportRecord
from emailexport.runtime import open_store
from emailexport.validation import validate_export_request

__all__ = ["app", "main"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.splitlines()[0])
workspace_app = typer.Typer(no_args_is_help=True, help="Workspace data.")
app.add_typer(workspace_app, name="workspace")
token_app = typer.Typer(no_args_is_help=True, help="API tokens.")
app.add_typer(token_app, name="token")
console = Console()
err = Console(stderr=True)

EXAMPLE_BUNDLE = Path(__file__).resolve().parents[1] / "examples" / "workspace.yaml"


def _fail(exc: EmailExportError) -> None:
    err.print(f"[bold red]Error:[/] {exc.args[0] if exc.args else exc}")
    if isinstance(exc, ValidationFailed):
        for path, messages in exc.errors.items():
            for message in messages:
                err.print(f"  [red]{path}[/]: {message}")


@workspace_app.command("import")
def workspace_import(file: Annotated[Path, typer.Argument(help="bundle file (.yaml, .yml or .json)")]) -> None:
    """Import a workspace bundle (insert or replace every document by id)."""
    bundle = load_bundle(read_bundle_file(file))
    summary = import_bundle(open_store(), bundle)
    counts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in summary.counts.items() if n)
    console.print(f"Imported workspace {summary.workspace_id} from {file}: {counts}")


def run_export(workspace_id: int, body: dict[str, Any]) -> ExportRecord:
    """Validate a Create Export body, store the record, run the flow here, return the final record."""
    from flows.export_email import export_email  # Prefect loads on first use, not for `--help`

    store = open_store()
    checked = validate_export_request(store, workspace_id, body)
    request = checked.request
    record = store.create_export(
        workspace=checked.workspace, email=checked.email, export_type=request.export_type,
        options=request.options, connector_id=request.connector_id, cdn_connector_id=request.cdn_connector_id,
        dynamic_content_profile_id=request.dynamic_content_profile_id,
        integration_name=checked.integration_name,
    )
    console.print(f"Export {record.id} created: {request.export_type} of {checked.email.name!r}, "
                  f"{len(request.options.locales)} locale(s); running flow export-{record.id} ...")
    export_email(record.id, return_state=True)
    return store.require_export(record.id)


def print_record(record: ExportRecord, as_json: bool = False) -> None:
    if as_json:
        console.print_json(record.model_dump_json())
        return
    colour = {"completed": "green", "failed": "red"}.get(record.status, "yellow")
    table = Table(title=f"Export {record.id}: {record.email.name} [{colour}]{record.status}[/]")
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
        table.add_row(locale, outcome.status if outcome else "-", third, "\n".join(warnings), "\n".join(errors))
    console.print(table)
    for error in record.export_errors.get("base") or []:
        console.print(f"[red]error:[/] {error}")
    opened = f"open in {record.integration_name}" if record.integration_name else "open"
    for label, url in (("zip", record.download_zip_url), ("json", record.download_json_url),
                       (opened, record.open_in_integration_url)):
        if url:
            console.print(f"[bold]{label}:[/] {url}")


@app.command("export")
def export(
    email: Annotated[int, typer.Option("--email", help="email id")],
    export_type: Annotated[str, typer.Option("--type", help="html, json, pdf or connector")] = "html",
    locales: Annotated[str, typer.Option("--locales", help="comma-separated, e.g. en-US,de-DE; default: all")] = "",
    profile: Annotated[str | None, typer.Option("--profile", help="dynamic content profile id")] = None,
    minify: Annotated[bool, typer.Option("--minify", help="minify the HTML")] = False,
    connector: Annotated[int | None, typer.Option("--connector", help="ESP connector id (--type connector)")] = None,
    image_mode: Annotated[str, typer.Option("--image-mode",
                                            help="use_cdn, include_in_zip or use_cdn_connector")] = "use_cdn",
    cdn_connector: Annotated[int | None, typer.Option("--cdn-connector", help="CDN connector id")] = None,
    update_previous: Annotated[bool, typer.Option("--update-previous",
                                                  help="update the ESP resources of the last export")] = False,
    workspace: Annotated[int, typer.Option("--workspace", help="workspace id")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="print the record as JSON")] = False,
) -> None:
    """Run one export on the embedded default and print its record and outputs."""
    from emailexport.models import Email

    chosen = [loc.strip() for loc in locales.split(",") if loc.strip()]
    if not chosen:
        found = open_store().get(workspace, Email, email)
        chosen = list(found.locales) if found else []
    options: dict[str, object] = {"locales": chosen, "minify_html": minify, "image_mode": image_mode}
    if update_previous:
        options["update_previous_export"] = True
    body = {"email_id": email, "export_type": export_type, "dynamic_content_profile_id": profile,
            "connector_id": connector, "cdn_connector_id": cdn_connector, "options": options}
    record = run_export(workspace, body)
    print_record(record, as_json)
    if record.status != "completed":
        raise typer.Exit(3)


@app.command("bulk")
def bulk(
    file: Annotated[str, typer.Argument(help="CSV file: a path or a storage URL (s3://...)")],
    force: Annotated[bool, typer.Option("--force", help="export rows again even if their export completed")] = False,
    concurrency: Annotated[int | None, typer.Option("--concurrency", help="exports at once (local mode)")] = None,
) -> None:
    """Export every row of a CSV file (CONTRACT.md, CSV bulk mode); exit 1 when a row failed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    from flows.bulk_export import BulkSummary, bulk_export, set_progress_listener

    counts = dict.fromkeys(("validated", "created", "completed", "failed", "skipped", "invalid"), 0)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err, transient=False) as progress:
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
        err.print(f"[yellow]warning:[/] {warning}")
    for row in summary.rows:
        if row.status in ("invalid", "failed", "running"):
            err.print(f"[red]row {row.row}[/] ({row.status}{f', export {row.export_id}' if row.export_id else ''}):")
            for error in row.errors:
                err.print(f"  {error}")
    console.print(summary.line())
    console.print("Summary: the bulk-export-rows and bulk-export-summary artifacts in the Prefect UI"
                  + (f"; every row in {summary.summary_url}" if summary.summary_url else ""))
    if not summary.ok:
        raise typer.Exit(1)


@app.command("show")
def show(export_id: int, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Print an export record."""
    print_record(open_store().require_export(export_id), as_json)


@app.command("demo")
def demo(bundle: Annotated[Path, typer.Option(help="workspace bundle to import")] = EXAMPLE_BUNDLE) -> None:
    """Import the example workspace, then export its email as html and as json in all its locales."""
    from emailexport.bundle_model import WorkspaceBundle

    parsed: WorkspaceBundle = load_bundle(read_bundle_file(bundle))
    import_bundle(open_store(), parsed)
    console.rule(f"Imported {bundle.name}: workspace {parsed.workspace.id}, {len(parsed.emails)} email(s)")
    email = parsed.emails[0]
    profile = parsed.dynamic_content_profiles[0].id if parsed.dynamic_content_profiles else None
    failed = False
    for export_type in ("html", "json"):
        console.rule(f"{export_type} export of {email.name!r} ({', '.join(email.locales)})")
        body = {"email_id": email.id, "export_type": export_type, "dynamic_content_profile_id": profile,
                "options": {"locales": list(email.locales)}}
        record = run_export(parsed.workspace.id, body)
        print_record(record)
        failed = failed or record.status != "completed"
    if failed:
        raise typer.Exit(3)


@token_app.command("create")
def token_create(
    workspace: Annotated[list[int], typer.Option("--workspace", help="a workspace the token may use (repeatable)")],
    label: Annotated[str, typer.Option("--label", help="what the token is for")] = "",
) -> None:
    """Create an API token for some workspaces and print it once (only its hash is stored)."""
    import secrets

    from emailexport.errors import NotFoundError

    store = open_store()
    unknown = [w for w in workspace if store.workspace(w) is None]
    if unknown:
        raise NotFoundError(f"unknown workspace(s): {', '.join(map(str, unknown))} (import them first)")
    token = secrets.token_urlsafe(32)
    store.add_token(token, workspace, label)
    err.print(f"Token for workspace(s) {', '.join(map(str, workspace))}; it is shown only this once:")
    print(token)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="interface the API and the Prefect UI listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port (0: any free port; default 8000, or a free one)")] = -1,
    prefect_port: Annotated[int, typer.Option(help="Prefect server port (0: any free; default 4200 or free)")] = -1,
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


def _serve(settings: Any, data_dir: Path, logs: Path, host: str, port: int, prefect_port: int,
           cluster: Any) -> None:
    from deployments.supervisor import Child, Supervisor, free_port

    if cluster is not None:
        settings = settings.model_copy(update={"database_url": cluster.store_url})
    open_store(settings)  # migrate once here, not concurrently in the children
    api_port = port if port > 0 else free_port(host, None if port == 0 else 8000)
    pf_port = prefect_port if prefect_port > 0 else free_port(host, None if prefect_port == 0 else 4200)
    prefect_url = f"http://{host}:{pf_port}/api"
    env = {
        **os.environ,
        "EMAILEXPORT_DATA_DIR": str(data_dir),
        "PREFECT_HOME": str(data_dir / "prefect"),
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
    supervisor = Supervisor(env, say=lambda text: err.print(text))
    supervisor.install_signal_handlers()
    code = 0
    try:
        console.print(f"Starting the Prefect server on port {pf_port} (log: {logs / 'prefect-server.log'}) ...")
        supervisor.start(Child("Prefect server", [str(bin_dir / "prefect"), "server", "start", "--host", host,
                                                  "--port", str(pf_port)],
                               ready_url=f"{prefect_url}/health", log_file=logs / "prefect-server.log"))
        console.print(f"Starting the runner (log: {logs / 'runner.log'}) and the API ...")
        # The runner is ready once its deployment is on the server (a POST before that would be a 503).
        supervisor.start(Child("runner", [sys.executable, "-m", "deployments.serve"], log_file=logs / "runner.log",
                               ready_url=f"{prefect_url}/deployments/name/{settings.export_deployment}"))
        # The dispatcher creates the flow runs of accepted exports and runs the reconcile loop.
        supervisor.start(Child("dispatcher", [sys.executable, "-m", "emailexport.runs.dispatcher"],
                               log_file=logs / "dispatcher.log"))
        supervisor.start(Child("API", [sys.executable, "-m", "uvicorn", "--factory", "emailexport.api:create_app",
                                       "--host", host, "--port", str(api_port)],
                               ready_url=f"http://{host}:{api_port}/health", log_file=logs / "api.log"))
        if not supervisor.stopping.is_set():
            console.print(f"[bold green]Ready.[/] API docs: http://{host}:{api_port}/docs", soft_wrap=True)
            console.print(f"Prefect UI: http://{host}:{pf_port}", soft_wrap=True)
            console.print("Press Ctrl-C to stop.", soft_wrap=True)
            code = supervisor.watch()
    finally:
        console.print("Stopping ...")
        supervisor.stop()
        console.print("Stopped.")
    if code:
        raise typer.Exit(code)


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
    """Console entry point: run the app, turning known errors into messages."""
    # The embedded Prefect server would otherwise try to send usage telemetry to the internet.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    try:
        # Without standalone mode click returns a command's exit code instead of exiting.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except EmailExportError as exc:
        _fail(exc)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("Aborted.")
        sys.exit(130)
    except Exception as exc:  # the last line of defence: no traceback at a user
        if os.environ.get("EMAILEXPORT_DEBUG"):
            raise
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        err.print(f"[bold red]Internal error:[/] {type(exc).__name__}: {exc} (set EMAILEXPORT_DEBUG=1 for details)")
        sys.exit(1)


if __name__ == "__main__":
    main()
