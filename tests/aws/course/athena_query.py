#!/usr/bin/env python3
"""The company lab's api.py query function, as the course writes it: send SQL to Athena with boto3,
wait for it, and return the rows as dictionaries.

    python athena_query.py DATABASE S3_OUTPUT "SELECT ..."

Prints the rows as one JSON list.
"""
import json
import sys
import time

import boto3

athena = boto3.client('athena')


def run_query(query, database, output):
    response = athena.start_query_execution(
        QueryString=query,
        QueryExecutionContext={'Database': database},
        ResultConfiguration={'OutputLocation': output},
    )
    query_execution_id = response['QueryExecutionId']
    while True:
        status = athena.get_query_execution(QueryExecutionId=query_execution_id)['QueryExecution']['Status']
        if status['State'] in ('SUCCEEDED', 'FAILED', 'CANCELLED'):
            break
        time.sleep(0.5)
    if status['State'] != 'SUCCEEDED':
        raise Exception(f"Query {status['State']}: {status.get('StateChangeReason')}")
    results = athena.get_query_results(QueryExecutionId=query_execution_id)
    columns = [col['Label'] for col in results['ResultSet']['ResultSetMetadata']['ColumnInfo']]
    rows = []
    for row in results['ResultSet']['Rows'][1:]:  # the first row is the header
        rows.append({columns[i]: cell.get('VarCharValue') for i, cell in enumerate(row['Data'])})
    return rows


if __name__ == '__main__':
    database, output, query = sys.argv[1:4]
    print(json.dumps(run_query(query, database, output)))
