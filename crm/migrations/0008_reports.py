from tortoise import migrations
from tortoise.migrations import operations as ops
from crm.types import FactKind, Role, TaskKind
from tortoise import fields
from tortoise.indexes import Index


class DescribeField(ops.AlterField):
    """AlterField for the model state only: no DDL (as in 0005).

    Role.LEAD and TaskKind.REPORT_DIGEST change nothing but the generated description of
    VARCHAR columns; Tortoise's SQLite AlterField would rebuild `manager` and `task`, and the
    rebuild's DROP TABLE cascades into every table that references them.
    """

    async def database_forward(self, app_label, old_state, new_state, state_editor=None):
        return None

    async def database_backward(self, app_label, old_state, new_state, state_editor=None):
        return None


class AddColumn(ops.AddField):
    """AddField whose downgrade is `ALTER TABLE … DROP COLUMN` (SQLite 3.35+, as in 0006):
    a rebuild of `conversation` would cascade into its messages and tasks."""

    async def database_backward(self, app_label, old_state, new_state, state_editor=None):
        if not state_editor:
            return
        model = old_state.apps.get_model(f"{app_label}.{self.model_name}")
        await state_editor._run_sql(
            f'ALTER TABLE "{model._meta.db_table}" DROP COLUMN "{self.name}"')

class Migration(migrations.Migration):
    dependencies = [('models', '0007_orders')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ReportFact',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharEnumField(description='FIRST_RESPONSE: first_response\nREPLY: reply\nRESOLUTION: resolution', enum_type=FactKind, max_length=16)),
                ('conversation_id', fields.IntField()),
                ('customer_id', fields.IntField()),
                ('manager_id', fields.IntField(null=True)),
                ('channel', fields.CharField(max_length=16)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ended_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('seconds', fields.BigIntField()),
                ('business_seconds', fields.BigIntField()),
            ],
            options={'table': 'report_fact', 'app': 'models', 'indexes': [Index(fields=['ended_at']), Index(fields=['customer_id', 'kind']), Index(fields=['conversation_id'])], 'pk_attr': 'id', 'table_description': "A customer's wait for the team, measured when it ended (crm/reports/facts.py): a first"},
            bases=['Model'],
        ),
        AddColumn(
            model_name='Conversation',
            name='first_reply_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        AddColumn(
            model_name='Conversation',
            name='reopened_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        AddColumn(
            model_name='Conversation',
            name='waiting_since',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        # Who is waiting right now: an open conversation whose customer wrote after our last
        # message (the reports' "unattended now"); later waits are recorded as they begin.
        ops.RunSQL(
            "UPDATE conversation SET waiting_since = last_inbound_at WHERE status = 'open' "
            "AND last_inbound_at IS NOT NULL AND (last_outbound_at IS NULL "
            "OR last_outbound_at < last_inbound_at)",
            reverse_sql=ops.RunSQL.noop,
        ),
        ops.AddIndex(
            model_name='Conversation',
            index=Index(fields=['opened_at']),
        ),
        ops.AddIndex(
            model_name='Conversation',
            index=Index(fields=['survey_sent_at']),
        ),
        DescribeField(
            model_name='Manager',
            name='role',
            field=fields.CharEnumField(default=Role.MANAGER, description='ADMIN: admin\nMANAGER: manager\nMARKETER: marketer\nLEAD: lead', enum_type=Role, max_length=16),
        ),
        DescribeField(
            model_name='Task',
            name='kind',
            field=fields.CharEnumField(description='REMINDER: reminder\nFOLLOWUP: followup\nAUTO_FOLLOWUP: auto_followup\nSURVEY: survey\nDEADLINE_WARNING: deadline_warning\nDEADLINE_MISSED: deadline_missed\nESCALATION: escalation\nREPORT_DIGEST: report_digest', enum_type=TaskKind, max_length=32),
        ),
    ]
