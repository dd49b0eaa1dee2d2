"""Vendor fakes. On import: find the vendor specs from a git worktree too (for every test that uses a fake).

`spec.SPECS` is `../shared/specs` relative to the checkout, which from a worktree under
/work/wt/<name> points one level too shallow; look upwards for the first `shared/specs` instead.
(A no-op once the specs live in the repository.)
"""

from __future__ import annotations

from pathlib import Path

from tests.connectors import spec

if not spec.SPECS.exists():
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "specs").is_dir():
            spec.SPECS = parent / "shared" / "specs"
            break
