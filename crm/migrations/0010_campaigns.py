from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from crm.types import CampaignState, RecipientState
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0009_console')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Segment',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(unique=True, max_length=64)),
                ('description', fields.TextField(default='', unique=False)),
                ('filters', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_by', fields.CharField(default='cli', max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'segment', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Saved filters over customers (crm/campaigns/segments.py).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Campaign',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=200)),
                ('segment', fields.ForeignKeyField('models.Segment', source_field='segment_id', null=True, db_constraint=True, to_field='id', related_name='campaigns', on_delete=OnDelete.SET_NULL)),
                ('spec', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('state', fields.CharEnumField(default=CampaignState.DRAFT, description='DRAFT: draft\nSCHEDULED: scheduled\nMISSED: missed\nSENDING: sending\nPAUSED: paused\nCANCELLED: cancelled\nFINISHED: finished', enum_type=CampaignState, max_length=16)),
                ('state_reason', fields.CharField(null=True, max_length=500)),
                ('start_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('segment_filters', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_by', fields.ForeignKeyField('models.Manager', source_field='created_by_id', null=True, db_constraint=True, to_field='id', related_name='campaigns', on_delete=OnDelete.SET_NULL)),
                ('actor', fields.CharField(default='cli', max_length=200)),
                ('winner', fields.CharField(null=True, max_length=8)),
                ('test_sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('winner_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('expanded_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('recipients_total', fields.IntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'campaign', 'app': 'models', 'indexes': [Index(fields=['state', 'start_at'])], 'pk_attr': 'id', 'table_description': 'A broadcast: content per channel in 1–3 variants, who (a segment), when, and its state.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CampaignRecipient',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('campaign', fields.ForeignKeyField('models.Campaign', source_field='campaign_id', db_constraint=True, to_field='id', related_name='recipients', on_delete=OnDelete.CASCADE)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name='campaign_rows', on_delete=OnDelete.CASCADE)),
                ('variant', fields.CharField(null=True, max_length=8)),
                ('channel', fields.CharField(null=True, max_length=16)),
                ('state', fields.CharEnumField(default=RecipientState.PENDING, description='PENDING: pending\nQUEUED: queued\nSENT: sent\nFAILED: failed\nSKIPPED: skipped\nCANCELLED: cancelled', enum_type=RecipientState, max_length=16)),
                ('skip_reason', fields.CharField(null=True, max_length=32)),
                ('error', fields.CharField(null=True, max_length=500)),
                ('due_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('deferred', fields.BooleanField(default=False)),
                ('outbox_id', fields.BigIntField(null=True)),
                ('message_id', fields.IntField(null=True)),
                ('queued_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('delivered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('failed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('replied_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('clicked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('opted_out_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'campaign_recipient', 'app': 'models', 'unique_together': (('campaign_id', 'customer_id'),), 'indexes': [Index(fields=['campaign_id', 'state', 'id']), Index(fields=['customer_id', 'sent_at']), Index(fields=['outbox_id']), Index(fields=['message_id'])], 'pk_attr': 'id', 'table_description': 'One person of a campaign: at most one row per (campaign, customer).'},
            bases=['Model'],
        ),
        ops.AddIndex(
            model_name='Outbox',
            index=Index(fields=['customer_id']),
        ),
    ]
