from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from crm.types import TaskKind, TaskState
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Task',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharEnumField(description='REMINDER: reminder\nFOLLOWUP: followup\nAUTO_FOLLOWUP: auto_followup\nSURVEY: survey\nDEADLINE_WARNING: deadline_warning\nDEADLINE_MISSED: deadline_missed\nESCALATION: escalation', enum_type=TaskKind, max_length=32)),
                ('state', fields.CharEnumField(default=TaskState.PENDING, description='PENDING: pending\nDONE: done\nSKIPPED: skipped\nCANCELLED: cancelled\nFAILED: failed', enum_type=TaskState, max_length=16)),
                ('due_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('key', fields.CharField(unique=True, max_length=200)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', null=True, db_constraint=True, to_field='id', related_name='tasks', on_delete=OnDelete.CASCADE)),
                ('conversation', fields.ForeignKeyField('models.Conversation', source_field='conversation_id', null=True, db_constraint=True, to_field='id', related_name='tasks', on_delete=OnDelete.CASCADE)),
                ('manager', fields.ForeignKeyField('models.Manager', source_field='manager_id', null=True, db_constraint=True, to_field='id', related_name='tasks', on_delete=OnDelete.SET_NULL)),
                ('text', fields.TextField(default='', unique=False)),
                ('payload', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('attempts', fields.IntField(default=0)),
                ('last_error', fields.CharField(null=True, max_length=500)),
                ('created_by', fields.CharField(default='system', max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('done_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'task', 'app': 'models', 'indexes': [Index(fields=['state', 'due_at']), Index(fields=['conversation_id', 'state']), Index(fields=['manager_id', 'state'])], 'pk_attr': 'id', 'table_description': 'Scheduled work with a due time: a reminder, a follow-up, a survey, a deadline check.'},
            bases=['Model'],
        ),
        ops.AlterModelOptions(
            name='AuditLog',
            options={'table': 'audit_log', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Who did what to which customer; kept, without personal data, after a customer is erased.'},
        ),
        ops.AddField(
            model_name='Conversation',
            name='after_hours_replied_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Conversation',
            name='next_response_due',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Conversation',
            name='queued_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Conversation',
            name='rated_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Conversation',
            name='rating',
            field=fields.SmallIntField(null=True),
        ),
        ops.AddField(
            model_name='Conversation',
            name='survey_sent_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AlterModelOptions(
            name='Identity',
            options={'table': 'identity', 'app': 'models', 'unique_together': (('channel', 'address'),), 'pk_attr': 'id', 'table_description': 'A (channel, address) leading to a customer: a Telegram user id, an email, an E.164 phone.'},
        ),
        ops.AddField(
            model_name='Manager',
            name='last_assigned_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
