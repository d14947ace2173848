"""The web console's staff accounts: a manager may have no Telegram id, and may have an email and
a password; staff sessions, used one-time links, sign-in lockouts.

Not atomic: on SQLite a column becomes nullable only by rebuilding its table, and the rebuild
must run with foreign keys off (a PRAGMA that does nothing inside a transaction), or the DROP of
`manager` would clear every conversation's assignee, message's author and task's manager
(ON DELETE SET NULL). The rebuild itself runs in a transaction of its own.
"""

import re

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops
from tortoise.indexes import Index


def _dialect(state_editor):
    return getattr(state_editor, "DIALECT", "sqlite")


async def _sqlite_rebuild(client, table, change):
    """SQLite's documented way to change a column: a new table from the old one's CREATE
    statement, rows copied, old dropped, new renamed; indexes re-made; foreign keys off."""
    _, rows = await client.execute_query(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [table])
    create = change(rows[0][0])
    _, rows = await client.execute_query(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
        [table])
    indexes = [r[0] for r in rows]
    new = f"new__{table}"
    create, renamed = re.subn(r'^CREATE TABLE\s+(IF NOT EXISTS\s+)?"?' + table + r'"?',
                              f'CREATE TABLE "{new}"', create.strip())
    if not renamed:
        raise RuntimeError(f"unexpected CREATE statement of {table}: {create[:80]}")
    script = ["PRAGMA foreign_keys = OFF", "BEGIN", create,
              f'INSERT INTO "{new}" SELECT * FROM "{table}"', f'DROP TABLE "{table}"',
              f'ALTER TABLE "{new}" RENAME TO "{table}"', *indexes, "COMMIT",
              "PRAGMA foreign_keys = ON"]
    try:
        await client.execute_script(";\n".join(script) + ";")
    except Exception:
        await client.execute_script("ROLLBACK; PRAGMA foreign_keys = ON;")
        raise
    _, broken = await client.execute_query(f'PRAGMA foreign_key_check("{table}")')
    if broken:
        raise RuntimeError(f"rebuilding {table} broke {len(broken)} foreign key(s)")


_NOT_NULL = re.compile(r'("telegram_user_id"\s+BIGINT)\s+NOT NULL', re.IGNORECASE)


class TelegramIdOptional(ops.AlterField):
    """telegram_user_id NOT NULL → NULL. A downgrade refuses while someone has no Telegram id."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None):
        if not state_editor:
            return
        if _dialect(state_editor) == "postgres":
            await state_editor._run_sql(
                'ALTER TABLE "manager" ALTER COLUMN "telegram_user_id" DROP NOT NULL')
            return
        await _sqlite_rebuild(state_editor.client, "manager",
                              lambda sql: _NOT_NULL.sub(r"\1", sql))

    async def database_backward(self, app_label, old_state, new_state, state_editor=None):
        if not state_editor:
            return
        _, rows = await state_editor.client.execute_query(
            'SELECT COUNT(*) FROM "manager" WHERE "telegram_user_id" IS NULL')
        if rows and rows[0][0]:
            raise RuntimeError(
                f"{rows[0][0]} member(s) of the team have no Telegram id: the older schema "
                "needs one for everybody. Remove them (or give them one) before downgrading")
        if _dialect(state_editor) == "postgres":
            await state_editor._run_sql(
                'ALTER TABLE "manager" ALTER COLUMN "telegram_user_id" SET NOT NULL')
            return
        await _sqlite_rebuild(state_editor.client, "manager", lambda sql: re.sub(
            r'("telegram_user_id"\s+BIGINT)', r"\1 NOT NULL", sql, count=1))


class AddColumn(ops.AddField):
    """AddField whose downgrade drops the column in place (and its unique index, on SQLite):
    Tortoise's SQLite RemoveField rebuilds the table with foreign keys on (see above)."""

    async def database_backward(self, app_label, old_state, new_state, state_editor=None):
        if not state_editor:
            return
        client = state_editor.client
        if _dialect(state_editor) != "postgres":
            _, indexes = await client.execute_query('PRAGMA index_list("manager")')
            for index in indexes:
                _, cols = await client.execute_query(f'PRAGMA index_info("{index[1]}")')
                if [c[2] for c in cols] == [self.name] and index[3] == "c":
                    await state_editor._run_sql(f'DROP INDEX "{index[1]}"')
        await state_editor._run_sql(f'ALTER TABLE "manager" DROP COLUMN "{self.name}"')


class Migration(migrations.Migration):
    dependencies = [('models', '0008_reports')]

    initial = False
    atomic = False

    operations = [
        TelegramIdOptional(
            model_name='Manager',
            name='telegram_user_id',
            field=fields.BigIntField(unique=True, null=True),
        ),
        AddColumn(
            model_name='Manager',
            name='email',
            field=fields.CharField(unique=True, null=True, max_length=320),
        ),
        AddColumn(
            model_name='Manager',
            name='password_hash',
            field=fields.CharField(null=True, max_length=200),
        ),
        ops.CreateModel(
            name='StaffSession',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('manager', fields.ForeignKeyField('models.Manager', source_field='manager_id', db_constraint=True, to_field='id', related_name='sessions', on_delete=OnDelete.CASCADE)),
                ('csrf', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_seen_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'staff_session', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A signed-in browser of the web console (crm/staff.py): only a hash of the cookie\'s token'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='UsedLink',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('purpose', fields.CharField(max_length=32)),
                ('used_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'used_link', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A one-time link that was used (a sign-in link from the bot, the first admin\'s link):'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SignInLock',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(unique=True, max_length=200)),
                ('failures', fields.IntField(default=0)),
                ('first_failure_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('locked_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'sign_in_lock', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Failed sign-ins counted per email and per client address; past the limit, a lockout.'},
            bases=['Model'],
        ),
        # The inbox's "waiting on us", the longest wait first: a plain CREATE INDEX on both.
        ops.AddIndex(
            model_name='Conversation',
            index=Index(fields=['status', 'last_inbound_at']),
        ),
    ]
