import sqlite3

from tortoise import migrations
from tortoise.migrations import operations as ops
from crm.types import ConsentKind
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class DropColumn(ops.RemoveField):
    """RemoveField as `ALTER TABLE … DROP COLUMN` on both databases (SQLite 3.35+).

    Tortoise drops a SQLite column by rebuilding the table, and the rebuild's DROP TABLE of
    `customer` cascades (foreign_keys = ON) into every table that references it: identities,
    messages and the consent rows this very migration writes would all be deleted.
    """

    def __init__(self, model_name, name, *, restore):
        super().__init__(model_name=model_name, name=name)
        self.restore = restore  # the column's SQL type and default, for a downgrade

    async def database_forward(self, app_label, old_state, new_state, state_editor=None):
        if not state_editor:
            return
        if getattr(state_editor, "DIALECT", "") == "sqlite" \
                and sqlite3.sqlite_version_info < (3, 35):
            raise RuntimeError(
                f"this upgrade needs SQLite 3.35 or newer to drop a column in place; Python "
                f"here uses SQLite {sqlite3.sqlite_version}. Upgrade the system's SQLite (or "
                "Python), or move to PostgreSQL, then run `crm db upgrade` again")
        model = old_state.apps.get_model(f"{app_label}.{self.model_name}")
        await state_editor._run_sql(
            f'ALTER TABLE "{model._meta.db_table}" DROP COLUMN "{self.name}"')

    async def database_backward(self, app_label, old_state, new_state, state_editor=None):
        if not state_editor:
            return
        model = new_state.apps.get_model(f"{app_label}.{self.model_name}")
        kind = self.restore[getattr(state_editor, "DIALECT", "sqlite")]
        await state_editor._run_sql(
            f'ALTER TABLE "{model._meta.db_table}" ADD COLUMN "{self.name}" {kind}')


class Migration(migrations.Migration):
    dependencies = [('models', '0003_outbox_claim_index')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Consent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name='consents', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharEnumField(description='MARKETING: marketing\nNOTIFICATIONS: notifications', enum_type=ConsentKind, max_length=16)),
                ('channel', fields.CharField(max_length=16)),
                ('granted', fields.BooleanField()),
                ('source', fields.CharField(max_length=32)),
                ('actor', fields.CharField(max_length=200)),
                ('changed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'consent', 'app': 'models', 'unique_together': (('customer_id', 'kind', 'channel'),), 'indexes': [Index(fields=['kind', 'channel', 'granted'])], 'pk_attr': 'id', 'table_description': "A customer's latest word on one kind of message on one channel (crm/consent.py)."},
            bases=['Model'],
        ),
        # The single opt-out flag of before meant "no marketing anywhere": carry it over as such.
        ops.RunSQL(
            "INSERT INTO consent (customer_id, kind, channel, granted, source, actor, changed_at) "
            "SELECT id, 'marketing', '*', FALSE, 'migration', 'system', "
            "COALESCE(opted_out_at, created_at) FROM customer WHERE marketing_opt_out = TRUE",
            reverse_sql="UPDATE customer SET marketing_opt_out = TRUE WHERE id IN (SELECT "
                        "customer_id FROM consent WHERE kind = 'marketing' AND channel = '*' "
                        "AND granted = FALSE)",
        ),
        # An opt-out that came by SMS STOP also stops every SMS (carriers' rule), order
        # updates included: the audit log of before tells which ones did.
        ops.RunSQL(
            "INSERT INTO consent (customer_id, kind, channel, granted, source, actor, changed_at) "
            "SELECT c.id, 'notifications', 'sms', FALSE, 'migration', 'system', "
            "COALESCE(c.opted_out_at, c.created_at) FROM customer c "
            "WHERE c.marketing_opt_out = TRUE AND (SELECT a.actor FROM audit_log a "
            "WHERE a.customer_id = c.id AND a.action IN ('opt_out', 'opt_in') "
            "ORDER BY a.id DESC LIMIT 1) = 'customer:sms'",
            reverse_sql=ops.RunSQL.noop,
        ),
        DropColumn(model_name='Customer', name='marketing_opt_out', restore={
            "sqlite": "INT NOT NULL DEFAULT 0", "postgres": "BOOL NOT NULL DEFAULT FALSE"}),
        DropColumn(model_name='Customer', name='opted_out_at', restore={
            "sqlite": "TIMESTAMP", "postgres": "TIMESTAMPTZ"}),
        ops.AddField(
            model_name='Identity',
            name='undeliverable_kind',
            field=fields.CharField(null=True, max_length=16),
        ),
    ]
