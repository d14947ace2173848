from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from crm.types import Channel
from json import dumps, loads
from tortoise import fields
from tortoise.indexes import Index


class DescribeField(ops.AlterField):
    """AlterField for the model state only: no DDL.

    Adding Channel.WEBHOOK changes nothing but the generated description of the `channel`
    columns (still VARCHAR(16)). Tortoise's SQLite AlterField rebuilds the table, and the rebuild's
    DROP TABLE cascades (foreign_keys = ON) into every referencing table: never run it for that.
    """

    async def database_forward(self, app_label, old_state, new_state, state_editor=None):
        return None

    async def database_backward(self, app_label, old_state, new_state, state_editor=None):
        return None


class Migration(migrations.Migration):
    dependencies = [('models', '0004_consent')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ApiKey',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(unique=True, max_length=64)),
                ('prefix', fields.CharField(max_length=16)),
                ('key_hash', fields.CharField(unique=True, max_length=64)),
                ('scopes', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_by', fields.CharField(default='cli', max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('last_used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'api_key', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A key for the HTTP API (crm/apikeys.py): only a hash of the secret is stored.'},
            bases=['Model'],
        ),
        DescribeField(
            model_name='Conversation',
            name='channel',
            field=fields.CharEnumField(description='TELEGRAM: telegram\nEMAIL: email\nSMS: sms\nTEST: test\nWEBHOOK: webhook', enum_type=Channel, max_length=16),
        ),
        DescribeField(
            model_name='Identity',
            name='channel',
            field=fields.CharEnumField(description='TELEGRAM: telegram\nEMAIL: email\nSMS: sms\nTEST: test\nWEBHOOK: webhook', enum_type=Channel, max_length=16),
        ),
        DescribeField(
            model_name='Message',
            name='channel',
            field=fields.CharEnumField(description='TELEGRAM: telegram\nEMAIL: email\nSMS: sms\nTEST: test\nWEBHOOK: webhook', enum_type=Channel, max_length=16),
        ),
        DescribeField(
            model_name='Outbox',
            name='channel',
            field=fields.CharEnumField(description='TELEGRAM: telegram\nEMAIL: email\nSMS: sms\nTEST: test\nWEBHOOK: webhook', enum_type=Channel, max_length=16),
        ),
        # Plain CREATE INDEX on both databases (no table rebuild): the API reads a customer's
        # addresses by customer and lists customers by when they were last seen.
        ops.AddIndex(
            model_name='Customer',
            index=Index(fields=['last_seen_at', 'id']),
        ),
        ops.AddIndex(
            model_name='Identity',
            index=Index(fields=['customer_id']),
        ),
    ]
