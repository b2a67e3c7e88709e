"""Alembic environment: the URL comes from the caller (core.db.migrate) or from settings."""

from alembic import context

from core.db.models import Base
from core.db.session import engine_for

config = context.config
url = config.attributes.get("database_url")
if not url:
    from core.config import get_settings

    url = get_settings().database_url

with engine_for(url).connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
