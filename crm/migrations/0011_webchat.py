from tortoise import migrations
from tortoise.migrations import operations as ops
from crm.types import Channel
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index


class DescribeField(ops.AlterField):
    """AlterField for the model state only: no DDL.

    Adding Channel.WEBCHAT changes nothing but the generated description of the `channel`
    columns (still VARCHAR(16)). Tortoise's SQLite AlterField rebuilds the table, and the rebuild's
    DROP TABLE cascades (foreign_keys = ON) into every referencing table: never run it for that.
    """

    async def database_forward(self, app_label, old_state, new_state, state_editor=None):
        return None

    async def database_backward(self, app_label, old_state, new_state, state_editor=None):
        return None


class Migration(migrations.Migration):
    dependencies = [('models', '0010_campaigns')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AddressCheck',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name='address_checks', on_delete=OnDelete.CASCADE)),
                ('channel', fields.CharEnumField(description='TELEGRAM: telegram\nEMAIL: email\nSMS: sms\nWEBCHAT: webchat\nTEST: test\nWEBHOOK: webhook', enum_type=Channel, max_length=16)),
                ('address', fields.CharField(max_length=320)),
                ('code_hash', fields.CharField(max_length=64)),
                ('attempts', fields.IntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('confirmed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'address_check', 'app': 'models', 'indexes': [Index(fields=['customer_id', 'id'])], 'pk_attr': 'id', 'table_description': 'A code sent to an email address or a phone number that a customer gave (in the web'},
            bases=['Model'],
        ),
        DescribeField(
            model_name='Conversation',
            name='channel',
            field=fields.CharEnumField(description='TELEGRAM: telegram\nEMAIL: email\nSMS: sms\nWEBCHAT: webchat\nTEST: test\nWEBHOOK: webhook', enum_type=Channel, max_length=16),
        ),
        DescribeField(
            model_name='Identity',
            name='channel',
            field=fields.CharEnumField(description='TELEGRAM: telegram\nEMAIL: email\nSMS: sms\nWEBCHAT: webchat\nTEST: test\nWEBHOOK: webhook', enum_type=Channel, max_length=16),
        ),
        ops.AlterModelOptions(
            name='Manager',
            options={'table': 'manager', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A member of the team: on Telegram (their user id), in the web console (an email and a'},
        ),
        DescribeField(
            model_name='Message',
            name='channel',
            field=fields.CharEnumField(description='TELEGRAM: telegram\nEMAIL: email\nSMS: sms\nWEBCHAT: webchat\nTEST: test\nWEBHOOK: webhook', enum_type=Channel, max_length=16),
        ),
        DescribeField(
            model_name='Outbox',
            name='channel',
            field=fields.CharEnumField(description='TELEGRAM: telegram\nEMAIL: email\nSMS: sms\nWEBCHAT: webchat\nTEST: test\nWEBHOOK: webhook', enum_type=Channel, max_length=16),
        ),
    ]
