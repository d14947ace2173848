from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0006_toolkit')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Order',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('number', fields.CharField(max_length=40)),
                ('number_key', fields.CharField(unique=True, max_length=40)),
                ('external_number', fields.CharField(null=True, max_length=100)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name='orders', on_delete=OnDelete.CASCADE)),
                ('status', fields.CharField(max_length=32)),
                ('items', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('amount_minor', fields.BigIntField(null=True)),
                ('currency', fields.CharField(null=True, max_length=3)),
                ('placed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('status_changed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'customer_order', 'app': 'models', 'indexes': [Index(fields=['customer_id', 'id'])], 'pk_attr': 'id', 'table_description': "An order of a customer (crm/orders): our number, the shop's, status, items, amount."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OrderEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('order', fields.ForeignKeyField('models.Order', source_field='order_id', db_constraint=True, to_field='id', related_name='events', on_delete=OnDelete.CASCADE)),
                ('status', fields.CharField(max_length=32)),
                ('previous_status', fields.CharField(null=True, max_length=32)),
                ('source', fields.CharField(max_length=16)),
                ('actor', fields.CharField(max_length=200)),
                ('note', fields.TextField(default='', unique=False)),
                ('happened_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'order_event', 'app': 'models', 'indexes': [Index(fields=['order_id', 'id'])], 'pk_attr': 'id', 'table_description': 'One status an order entered: when, from where (api, import, manager), and a note.'},
            bases=['Model'],
        ),
    ]
