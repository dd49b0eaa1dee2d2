"""image fetches: validators and content hash of each image URL's last fetch (conditional re-fetch)

The bytes themselves live in the output storage under their hash (`library/images/<sha256>.<ext>`);
this table remembers which hash a URL served and the ETag / Last-Modified it came with.

Revision ID: 0004
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = "0003_issue18"  # chained after issue 18's migration at merge
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('image_fetches',
    sa.Column('url_hash', sa.String(length=64), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('etag', sa.Text(), nullable=True),
    sa.Column('last_modified', sa.String(length=64), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content_type', sa.String(length=32), nullable=False),
    sa.Column('file_size', sa.Integer(), nullable=False),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('url_hash')
    )


def downgrade() -> None:
    op.drop_table('image_fetches')
