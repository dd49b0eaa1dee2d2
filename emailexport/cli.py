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
        integration_name=checked.connector.name if checked.connector else None,
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
    for column in ("locale", "status", "size", "warnings", "errors"):
        table.add_column(column)
    for locale in record.options.locales:
        outcome = record.results.get(locale)
        warnings = record.warnings.get(locale) or []
        errors = record.export_errors.get(locale) or []
        table.add_row(locale, outcome.status if outcome else "-",
                      f"{outcome.size_bytes:,} B" if outcome and outcome.size_bytes else "-",
                      "\n".join(warnings), "\n".join(errors))
    console.print(table)
    for error in record.export_errors.get("base") or []:
        console.print(f"[red]error:[/] {error}")
    for label, url in (("zip", record.download_zip_url), ("json", record.download_json_url)):
        if url:
            console.print(f"[bold]{label}:[/] {url}")


@app.command("export")
def export(
    email: Annotated[int, typer.Option("--email", help="email id")],
    export_type: Annotated[str, typer.Option("--type", help="html or json")] = "html",
    locales: Annotated[str, typer.Option("--locales", help="comma-separated, e.g. en-US,de-DE; default: all")] = "",
    profile: Annotated[str | None, typer.Option("--profile", help="dynamic content profile id")] = None,
    minify: Annotated[bool, typer.Option("--minify", help="minify the HTML")] = False,
    workspace: Annotated[int, typer.Option("--workspace", help="workspace id")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="print the record as JSON")] = False,
) -> None:
    """Run one export on the embedded default and print its record and outputs."""
    from emailexport.models import Email

    chosen = [loc.strip() for loc in locales.split(",") if loc.strip()]
    if not chosen:
        found = open_store().get(workspace, Email, email)
        chosen = list(found.locales) if found else []
    body = {"email_id": email, "export_type": export_type, "dynamic_content_profile_id": profile,
            "options": {"locales": chosen, "minify_html": minify}}
    record = run_export(workspace, body)
    print_record(record, as_json)
    if record.status != "completed":
        raise typer.Exit(3)


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


def main() -> None:
    """Console entry point: run the app, turning known errors into messages."""
    try:
        app(standalone_mode=False)
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
