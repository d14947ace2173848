from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0002_routing_tasks')]

    initial = False

    operations = [
        ops.RemoveIndex(
            model_name='Outbox',
            name=None,
            fields=['state', 'channel', 'priority', 'due_ms'],
        ),
        ops.RemoveIndex(
            model_name='Outbox',
            name=None,
            fields=['channel', 'address', 'state'],
        ),
        ops.AddIndex(
            model_name='Outbox',
            index=Index(fields=['state', 'channel', 'priority', 'id']),
        ),
        ops.AddIndex(
            model_name='Outbox',
            index=Index(fields=['channel', 'address', 'state', 'id']),
        ),
    ]
