"""`emailexport transform FILE`: the transform stage on an HTML file a team already has.

Teams bring existing templates; this runs exactly the export's transform stage (protect ESP syntax
and Outlook comments, inline CSS, optionally minify, restore) on one file, with no workspace, and
reports what the export would warn about: the transform's own warnings and the pre-export checks
(for the ESP of `preset` when given). The file's ESP syntax is found by pattern (see
`transforms.esp_syntax`); `<html lang dir>` is left as the file has it. Subject and preheader are
not part of a file, so their checks are skipped. No link tracking or image rewriting: those need
a workspace's profiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from emailexport.checks import CheckSettings, run_checks
from emailexport.dialects import PRESETS
from emailexport.errors import EmailExportError
from emailexport.transforms import TransformOptions, transform_html

__all__ = ["FileTransform", "TransformFileError", "transform_file"]

_NOT_FILE_CHECKS = frozenset({"subject_missing", "preheader_missing"})


class TransformFileError(EmailExportError):
    """The input cannot be read, the output cannot be written, or an option is unknown."""


@dataclass(frozen=True)
class FileTransform:
    """The transformed HTML and every warning, in order: the transform's, then the checks'."""

    html: str
    warnings: tuple[str, ...]


def transform_file(path: Path | str, *, minify: bool = False, preset: str | None = None,
                   out: Path | str | None = None) -> FileTransform:
    """An HTML file -> its transformed HTML and warnings (written to `out` too when given).

    Raises `TransformFileError` for an unreadable or non-UTF-8 input, an unknown preset or an
    output that cannot be written.
    """
    if preset is not None and preset not in PRESETS:
        raise TransformFileError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    source = Path(path)
    try:
        data = source.read_bytes()
    except OSError as error:
        raise TransformFileError(f"cannot read {source}: {error.strerror or error}") from None
    try:
        html = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise TransformFileError(f"{source} is not UTF-8 text (invalid byte at offset {error.start})") from None
    result = transform_html(html, [], TransformOptions(lang="", direction="ltr", minify=minify))
    # Checks run on the file as written, so their line numbers point into it (a minified output is
    # one line); the transform adds no image, link or comment, so they find the same problems.
    # Only the size is the output's.
    settings = CheckSettings()
    findings = [f for f in run_checks(html, "", "", settings=settings, preset=preset)
                if f.code not in _NOT_FILE_CHECKS and f.code != "html_over_102kb"]
    findings += [f for f in run_checks(result.html, "", "", settings=settings) if f.code == "html_over_102kb"]
    warnings = (*result.warnings, *(str(f) for f in findings))
    if out is not None:
        try:
            Path(out).write_text(result.html, encoding="utf-8")
        except OSError as error:
            raise TransformFileError(f"cannot write {out}: {error.strerror or error}") from None
    return FileTransform(html=result.html, warnings=warnings)
