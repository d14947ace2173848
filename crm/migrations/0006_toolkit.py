from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class PerDialect(ops.RunSQL):
    """RunSQL with statements for each database: text search differs between them."""

    def __init__(self, sql, reverse_sql):
        super().__init__(sql, reverse_sql)

    async def _run_sql(self, state_editor, sqls):
        dialect = getattr(state_editor, "DIALECT", "sqlite")
        for statement in sqls["postgres" if dialect == "postgres" else "sqlite"]:
            # One statement at a time, unsplit: a trigger's body holds semicolons.
            if state_editor.collect_sql:
                state_editor.collected_sql.append(statement)
            else:
                await state_editor.client.execute_query(statement)


class AddColumn(ops.AddField):
    """AddField whose downgrade is `ALTER TABLE … DROP COLUMN` (SQLite 3.35+, as in 0004).

    Tortoise's SQLite RemoveField rebuilds the table, and the rebuild's DROP TABLE of `manager`
    would clear every conversation's assignee and every message's author (ON DELETE SET NULL).
    """

    async def database_backward(self, app_label, old_state, new_state, state_editor=None):
        if not state_editor:
            return
        model = old_state.apps.get_model(f"{app_label}.{self.model_name}")
        await state_editor._run_sql(
            f'ALTER TABLE "{model._meta.db_table}" DROP COLUMN "{self.name}"')


# Search (crm/search.py). PostgreSQL: a GIN index on the 'simple' text search configuration
# (words, lower-cased in any script, no stemming) for messages by text. SQLite needs nothing:
# it scans with LIKE over a case-folding function, and an FTS5 table kept by triggers is not an
# option here: Tortoise counts a statement's changes by total_changes, which counts what the
# triggers write too, so every UPDATE of a message would report the wrong number of rows.
_TSV = ["CREATE INDEX message_text_search ON message USING gin (to_tsvector('simple', text))"]
_TSV_DOWN = ["DROP INDEX IF EXISTS message_text_search"]


class Migration(migrations.Migration):
    dependencies = [('models', '0005_api_keys')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CannedReply',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(max_length=64)),
                ('language', fields.CharField(default='', db_default='', max_length=8)),
                ('text', fields.TextField(unique=False)),
                ('html', fields.BooleanField(default=False, db_default=False)),
                ('created_by', fields.CharField(default='cli', max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'canned_reply', 'app': 'models', 'unique_together': (('key', 'language'),), 'pk_attr': 'id', 'table_description': 'A ready answer managers send with `/r KEY` (crm/replies.py): a Jinja2 template, one'},
            bases=['Model'],
        ),
        AddColumn(
            model_name='Manager',
            name='language',
            field=fields.CharField(null=True, max_length=8),
        ),
        PerDialect({"sqlite": [], "postgres": _TSV}, {"sqlite": [], "postgres": _TSV_DOWN}),
    ]
