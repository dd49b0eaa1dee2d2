"""`emailexport images add FILE... [--workspace N]` / `emailexport images list`: the image library
outside bundles. `add` runs the same checks and storage as a bundle's `file:` (see library.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from emailexport.errors import NotFoundError, ValidationFailed
from emailexport.models import Image
from emailexport.runtime import open_storage, open_store
from emailexport.store import Store

__all__ = ["images_app"]

images_app = typer.Typer(no_args_is_help=True, help="The image library: add image files, list images.")
console = Console()

WorkspaceOption = Annotated[int | None, typer.Option("--workspace", help="workspace id (default: the only one)")]


def _workspace(store: Store, workspace: int | None) -> int:
    if workspace is not None:
        if store.workspace(workspace) is None:
            raise NotFoundError(f"workspace {workspace} not found (import a bundle first)")
        return workspace
    ids = store.workspace_ids()
    if len(ids) != 1:
        known = ", ".join(map(str, ids)) or "none (import a bundle first)"
        raise ValidationFailed({"--workspace": [f"name the workspace; the store has {known}"]}, "Which workspace?")
    return ids[0]


def _image_id(filename: str, sha256: str) -> str:
    """`<file stem>-<first 12 hex of the hash>`: readable, and adding the same file again replaces it."""
    stem = re.sub(r"[^A-Za-z0-9]+", "-", Path(filename).stem).strip("-").lower()[:40] or "image"
    return f"{stem}-{sha256[:12]}"


@images_app.command("add")
def images_add(
    files: Annotated[list[Path], typer.Argument(help="PNG, JPEG, GIF or WebP files")],
    workspace: WorkspaceOption = None,
) -> None:
    """Check image files and add them to a workspace's library (stored by content hash)."""
    from emailexport.images.library import ImageLibrary, LibraryImageError, inspect_image
    from emailexport.images.settings import ImageSettings

    store = open_store()
    workspace_id = _workspace(store, workspace)
    cap = ImageSettings().max_bytes
    checked = []
    errors: dict[str, list[str]] = {}
    for path in files:
        try:
            if not path.is_file():
                raise LibraryImageError("not a file")
            if path.stat().st_size > cap:
                raise LibraryImageError(f"{path.stat().st_size:,} bytes is over the {cap:,} byte limit")
            data = path.read_bytes()
            checked.append((path, data, inspect_image(data, cap)))
        except LibraryImageError as exc:
            errors.setdefault(str(path), []).append(str(exc))
        except OSError as exc:
            errors.setdefault(str(path), []).append(f"cannot read: {exc.strerror or exc}")
    if errors:  # nothing is added unless every file is good
        raise ValidationFailed(errors, "Not added")
    library = ImageLibrary(open_storage())
    images = []
    for path, data, info in checked:
        library.put(data, cap)
        images.append(Image(id=_image_id(path.name, info.sha256), name=path.stem, filename=path.name,
                            sha256=info.sha256, width=info.width, height=info.height,
                            content_type=info.content_type, file_size=info.file_size))
    store.put_documents(workspace_id, images)
    for image in images:
        console.print(f"Added {image.filename} to workspace {workspace_id} as image [bold]{image.id}[/] "
                      f"({image.width}x{image.height} {image.content_type}, {image.file_size:,} bytes)")


@images_app.command("list")
def images_list(workspace: WorkspaceOption = None) -> None:
    """List a workspace's library images: where each one's bytes are, size, dimensions, type."""
    store = open_store()
    workspace_id = _workspace(store, workspace)
    table = Table(title=f"Images of workspace {workspace_id}")
    for column in ("id", "filename", "stored", "public URL", "size", "dimensions", "type"):
        table.add_column(column)
    for image in store.list_documents(workspace_id, Image):
        table.add_row(image.id, image.filename, image.sha256[:12] if image.sha256 else "-", image.public_url or "-",
                      f"{image.file_size:,}" if image.file_size is not None else "?",
                      f"{image.width}x{image.height}" if image.width and image.height else "?", image.content_type)
    console.print(table)
