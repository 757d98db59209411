#!/usr/bin/env python3
"""The trades lab's notebook (UAM_Lab_1_reading_from_kinesis_stream.ipynb), its cells in order, as
the course writes them: read a Kinesis data stream with boto3 through shard iterators.

    python read_stream.py STREAM_NAME

Prints one JSON trade per line; stops once every shard is read up to its latest record.
"""
import json
import sys
import time

import boto3

stream_name = sys.argv[1]

# %% the client and the stream's shards
kinesis_client = boto3.client('kinesis')
response = kinesis_client.describe_stream(StreamName=stream_name)
shards = [shard['ShardId'] for shard in response['StreamDescription']['Shards']]

# %% an iterator per shard, from the oldest record kept
for shard_id in shards:
    shard_iterator = kinesis_client.get_shard_iterator(StreamName=stream_name, ShardId=shard_id,
                                                       ShardIteratorType='TRIM_HORIZON')['ShardIterator']

    # %% get_records pages through the shard; NextShardIterator says where the next page starts
    record_response = kinesis_client.get_records(ShardIterator=shard_iterator, Limit=100)
    while 'NextShardIterator' in record_response:
        for record in record_response['Records']:
            print(json.dumps(json.loads(record['Data'])))
        if not record_response['Records'] and record_response['MillisBehindLatest'] == 0:
            break  # the notebook's loop runs until interrupted; here, until the shard is read
        record_response = kinesis_client.get_records(ShardIterator=record_response['NextShardIterator'], Limit=100)
        time.sleep(0.2)
