"""Serve the pipeline's deployments from this process (no work pool needed): `python -m deployments.serve`.

`prefect.yaml` declares the same deployments for `prefect deploy` onto a server with workers.
"""

from __future__ import annotations

from prefect import serve

from flows.export_email import export_email

__all__ = ["deployments", "main"]


def deployments() -> list:
    """The deployments this project serves."""
    return [export_email.to_deployment(name="export-email", tags=["emailexport"])]


def main(limit: int = 8) -> None:
    """Serve until interrupted, running at most `limit` flow runs at once."""
    serve(*deployments(), limit=limit)


if __name__ == "__main__":
    main()
