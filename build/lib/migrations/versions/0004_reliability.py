"""reliability: enqueue tokens, holders, retries, takeovers; GitHub budgets; redeliveries

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retries', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('takeovers', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('enqueue_token', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('holder', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('run_after', sa.DateTime(timezone=True), nullable=True))
    op.create_table('github_budgets',
    sa.Column('installation_id', sa.BigInteger(), nullable=False),
    sa.Column('limit', sa.Integer(), nullable=True),
    sa.Column('remaining', sa.Integer(), nullable=True),
    sa.Column('reset_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('used', sa.Integer(), nullable=True),
    sa.Column('paused_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('pause_reason', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('installation_id')
    )
    op.create_table('redeliveries',
    sa.Column('guid', sa.String(length=80), nullable=False),
    sa.Column('delivery_id', sa.BigInteger(), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=True),
    sa.Column('status', sa.Text(), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('guid')
    )


def downgrade() -> None:
    op.drop_table('redeliveries')
    op.drop_table('github_budgets')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('run_after')
        batch_op.drop_column('holder')
        batch_op.drop_column('enqueue_token')
        batch_op.drop_column('takeovers')
        batch_op.drop_column('retries')
