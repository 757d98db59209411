#!/usr/bin/env python3
"""The trades lab's data generator, as the course writes it: replay a CSV of Bitstamp trades into a
Kinesis data stream with boto3's put_record, one JSON line per trade, keyed by symbol.

    python generator.py -k cryptostock-dev-100603781557-jk-12345 [-i trades.csv] [-s 50] [-r]

Plain boto3 and nothing else: credentials, region and endpoint come from the environment.
"""
import argparse
import csv
import json
import logging
import os
import sys
import time

import boto3

logging.basicConfig(level=logging.INFO, handlers=[logging.StreamHandler(sys.stdout)],
                    format='[%(asctime)s] {%(filename)s:%(lineno)d} %(levelname)s - %(message)s')
logger = logging.getLogger(__name__)

DEFAULT_DATA_FILE = 'crypto_trades_20201001.csv'


class KinesisProducer:
    def __init__(self):
        self.client = boto3.client('kinesis')
        self.max_attempts = 5

    def produce(self, event, key, data_stream):
        # one JSON document per line, so that Firehose writes JSON lines to S3
        payload = (json.dumps(event) + '\n').encode('utf-8')
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self.client.put_record(StreamName=data_stream, Data=payload, PartitionKey=key)
                logger.info('Msg with trans_id={} sent to shard {} seq no {}'.format(
                    event['trans_id'], response['ShardId'], response['SequenceNumber']))
                return response
            except Exception as e:
                if attempt == self.max_attempts:
                    logger.error('Max attempt has been reached, giving up')
                    raise
                logger.warning('Exception has occurred {}, retrying...'.format(e))
                time.sleep(attempt)


def prepare_event(row):
    """CSV values are strings: give the trade its types."""
    event = {
        'transaction_ts': int(row['transaction_ts']),
        'symbol': row['symbol'],
        'price': float(row['price']),
        'amount': float(row['amount']),
        'dollar_amount': float(row['dollar_amount']),
        'type': row['type'],
        'trans_id': int(row['trans_id']),
    }
    return event, row['symbol']


def produce_data(data_stream, messages_per_sec, input_file, single_run):
    producer = KinesisProducer()
    with open(input_file) as f:
        rows = list(csv.DictReader(f))
    current_time = int(rows[0]['transaction_ts'])
    replay = 1
    while True:
        logger.info('start replaying for the {} time'.format(replay))
        for row in rows:
            delta = int(row['transaction_ts']) - current_time
            current_time = int(row['transaction_ts'])
            if delta > 0 and messages_per_sec > 0:
                time.sleep(delta / messages_per_sec)
            event, key = prepare_event(row)
            producer.produce(event, key, data_stream)
        if single_run:
            break
        replay += 1


if __name__ == '__main__':
    logger.info('Starting Simple Kinesis Producer (replaying stock data)')
    parser = argparse.ArgumentParser()
    parser.add_argument('-k', '--kinesis_ds', dest='kinesis_ds', required=True)
    parser.add_argument('-i', '--input_file', dest='input_file')
    parser.add_argument('-s', '--messages_per_sec', dest='mps', type=int, default=-1)
    parser.add_argument('-r', '--single-run', dest='single_run', action='store_true', default=False)
    args = parser.parse_args()
    data_file = args.input_file or os.path.join(os.path.dirname(os.path.abspath(__file__)), DEFAULT_DATA_FILE)
    produce_data(args.kinesis_ds, args.mps, data_file, args.single_run)
