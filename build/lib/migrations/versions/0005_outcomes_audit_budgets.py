"""fix outcomes, model usage, append-only audit trail

Revision ID: 0005
Revises: 0004

The database itself refuses changes to audit records, beside the app's own SQLAlchemy hooks:
on PostgreSQL a trigger refuses every UPDATE, and every DELETE except retention's (a DELETE of
records older than the cutoff retention sets for its own transaction, `qwenfix.audit_purge_before`);
on SQLite, which has no per-transaction settings, triggers refuse every UPDATE and the DELETE of
any record less than a day old.
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION qwenfix_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE'
     AND OLD.at < NULLIF(current_setting('qwenfix.audit_purge_before', true), '')::timestamptz THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit records are append-only: record % cannot be %d', OLD.id, lower(TG_OP)
    USING ERRCODE = 'insufficient_privilege';
END $$
"""
PG_TRIGGER = """
CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records
FOR EACH ROW EXECUTE FUNCTION qwenfix_audit_append_only()
"""
SQLITE_TRIGGERS = [
    """CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
       BEGIN SELECT RAISE(ABORT, 'audit records are append-only: they cannot be updated'); END""",
    """CREATE TRIGGER audit_records_no_early_delete BEFORE DELETE ON audit_records
       WHEN OLD.at > datetime('now', '-1 day')
       BEGIN SELECT RAISE(ABORT, 'audit records are append-only: only retention deletes records'); END""",
]


def upgrade() -> None:
    op.create_table('fix_outcomes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('installation_id', sa.BigInteger(), nullable=True),
    sa.Column('repo', sa.String(length=200), nullable=False),
    sa.Column('pr_number', sa.Integer(), nullable=True),
    sa.Column('branch', sa.String(length=300), nullable=True),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('how', sa.String(length=16), nullable=False),
    sa.Column('base_sha', sa.String(length=64), nullable=True),
    sa.Column('delivered_sha', sa.String(length=64), nullable=True),
    sa.Column('fix_pr_number', sa.Integer(), nullable=True),
    sa.Column('review_id', sa.BigInteger(), nullable=True),
    sa.Column('blocks', sa.JSON(), nullable=False),
    sa.Column('verdict', sa.String(length=16), nullable=False),
    sa.Column('verdict_reason', sa.Text(), nullable=True),
    sa.Column('ci_sha', sa.String(length=64), nullable=True),
    sa.Column('ci', sa.String(length=8), nullable=True),
    sa.Column('ci_detail', sa.Text(), nullable=True),
    sa.Column('red_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ci_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tokens', sa.Integer(), nullable=False),
    sa.Column('cost', sa.Float(), nullable=True),
    sa.Column('model_calls', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('job_id')
    )
    with op.batch_alter_table('fix_outcomes', schema=None) as batch_op:
        batch_op.create_index('ix_fix_outcomes_repo_ci_sha', ['repo', 'ci_sha'], unique=False)
        batch_op.create_index('ix_fix_outcomes_repo_pr', ['repo', 'pr_number'], unique=False)

    op.create_table('model_calls',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('installation_id', sa.BigInteger(), nullable=True),
    sa.Column('repo', sa.String(length=200), nullable=True),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('prompt_tokens', sa.Integer(), nullable=False),
    sa.Column('cached_tokens', sa.Integer(), nullable=False),
    sa.Column('completion_tokens', sa.Integer(), nullable=False),
    sa.Column('cost', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('model_calls', schema=None) as batch_op:
        batch_op.create_index('ix_model_calls_installation_at', ['installation_id', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_model_calls_job_id'), ['job_id'], unique=False)
        batch_op.create_index('ix_model_calls_repo_at', ['repo', 'at'], unique=False)

    op.create_table('audit_records',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('installation_id', sa.BigInteger(), nullable=True),
    sa.Column('repo', sa.String(length=200), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_records_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_records_job_id'), ['job_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_records_repo'), ['repo'], unique=False)

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_jobs_installation_id'), ['installation_id'], unique=False)

    dialect = op.get_bind().dialect.name
    if dialect == 'postgresql':
        op.execute(PG_FUNCTION)
        op.execute(PG_TRIGGER)
    elif dialect == 'sqlite':
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == 'postgresql':
        op.execute('DROP TRIGGER IF EXISTS audit_records_append_only ON audit_records')
        op.execute('DROP FUNCTION IF EXISTS qwenfix_audit_append_only()')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_jobs_installation_id'))
    op.drop_table('audit_records')  # its SQLite triggers go with it
    op.drop_table('model_calls')
    op.drop_table('fix_outcomes')
