from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class PerDialect(ops.RunSQL):
    """RunSQL with statements for each database: full-text search differs between them."""

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


# Search (crm/queries.py): customers by name and messages by text, case-insensitively in every
# script. SQLite: FTS5 tables kept in step with their tables by triggers (unicode61 folds
# Cyrillic case too, which SQLite's LOWER() and LIKE do not). PostgreSQL: GIN indexes on the
# 'simple' text search configuration (no stemming, like unicode61), for the same prefix queries.
_FTS = [
    "CREATE VIRTUAL TABLE message_fts USING fts5(text, content='message', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER message_fts_ai AFTER INSERT ON message BEGIN "
    "INSERT INTO message_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER message_fts_ad AFTER DELETE ON message BEGIN "
    "INSERT INTO message_fts(message_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER message_fts_au AFTER UPDATE OF text ON message BEGIN "
    "INSERT INTO message_fts(message_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO message_fts(rowid, text) VALUES (new.id, new.text); END",
    "INSERT INTO message_fts(message_fts) VALUES ('rebuild')",
    "CREATE VIRTUAL TABLE customer_fts USING fts5(name, content='customer', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER customer_fts_ai AFTER INSERT ON customer BEGIN "
    "INSERT INTO customer_fts(rowid, name) VALUES (new.id, COALESCE(new.name, '')); END",
    "CREATE TRIGGER customer_fts_ad AFTER DELETE ON customer BEGIN "
    "INSERT INTO customer_fts(customer_fts, rowid, name) VALUES ('delete', old.id, "
    "COALESCE(old.name, '')); END",
    "CREATE TRIGGER customer_fts_au AFTER UPDATE OF name ON customer BEGIN "
    "INSERT INTO customer_fts(customer_fts, rowid, name) VALUES ('delete', old.id, "
    "COALESCE(old.name, '')); "
    "INSERT INTO customer_fts(rowid, name) VALUES (new.id, COALESCE(new.name, '')); END",
    "INSERT INTO customer_fts(customer_fts) VALUES ('rebuild')",
]
_FTS_DOWN = [
    *(f"DROP TRIGGER IF EXISTS {t}" for t in (
        "message_fts_ai", "message_fts_ad", "message_fts_au",
        "customer_fts_ai", "customer_fts_ad", "customer_fts_au")),
    "DROP TABLE IF EXISTS message_fts", "DROP TABLE IF EXISTS customer_fts",
]
_TSV = [
    "CREATE INDEX message_text_search ON message USING gin (to_tsvector('simple', text))",
    "CREATE INDEX customer_name_search ON customer USING gin "
    "(to_tsvector('simple', COALESCE(name, '')))",
]
_TSV_DOWN = ["DROP INDEX IF EXISTS message_text_search",
             "DROP INDEX IF EXISTS customer_name_search"]


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
        PerDialect({"sqlite": _FTS, "postgres": _TSV},
                   {"sqlite": _FTS_DOWN, "postgres": _TSV_DOWN}),
    ]
