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

    async def database_forward(self, app_label, old_state, new_state, state_editor=None):
        if not state_editor:
            return
        model = old_state.apps.get_model(f"{app_label}.{self.model_name}")
        await state_editor._run_sql(
            f'ALTER TABLE "{model._meta.db_table}" DROP COLUMN "{self.name}"')


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
        DropColumn(model_name='Customer', name='marketing_opt_out'),
        DropColumn(model_name='Customer', name='opted_out_at'),
        ops.AddField(
            model_name='Identity',
            name='undeliverable_kind',
            field=fields.CharField(null=True, max_length=16),
        ),
    ]
