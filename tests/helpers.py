"""Helpers shared by tests: build a render input for a locale of a stored email."""

from __future__ import annotations

from emailexport.models import ExportOptions
from emailexport.render import LocaleRenderInput
from emailexport.store import Store
from tasks.load import build_job


def create_export(store: Store, workspace_id: int, email_id: int, locales: list[str], *, export_type: str = "html",
                  profile: str | None = None, minify: bool = False):
    from emailexport.models import Email

    email = store.require(workspace_id, Email, email_id)
    return store.create_export(workspace=store.workspace(workspace_id), email=email, export_type=export_type,
                               options=ExportOptions(locales=locales, minify_html=minify),
                               dynamic_content_profile_id=profile)


def render_inputs(
    store: Store, workspace_id: int, email_id: int, locales: list[str], **kwargs
) -> dict[str, LocaleRenderInput]:
    record = create_export(store, workspace_id, email_id, locales, **kwargs)
    return build_job(store, record).inputs
