-- Lab B, Athena dialect: run with `lakelab sql trino/queries/lab_b.sql` (UTC).
-- CREATE EXTERNAL TABLE and MSCK REPAIR TABLE are translated for Trino (docs/lab_b.md).
-- Defaults below; override with --var NAME=VALUE (and the database with --schema).
-- database: lab_b
-- var: raw_table=crawler_stockdata
-- var: processed_table=processed_stockdata
-- var: processed_location=s3://datalake/processed-zone/stockdata/

-- name: hourly_top_trades
-- Exercise 3: the highest buy and sell of each symbol per hourly bucket of transaction_ts
-- (event time), oldest bucket first; year/month/day/hour are the arrival-time partitions.
WITH ranked AS (
  SELECT
    date_format(from_unixtime(transaction_ts), '%Y-%m-%dT%H') AS HourlyBucket,
    rank() OVER (
      PARTITION BY date_format(from_unixtime(transaction_ts), '%Y-%m-%dT%H'), symbol, type
      ORDER BY dollar_amount DESC) AS rnk,
    transaction_ts, symbol, price, amount, dollar_amount, type, trans_id, year, month, day, hour
  FROM ${raw_table}
)
SELECT * FROM ranked
WHERE rnk = 1
ORDER BY HourlyBucket, symbol, type, transaction_ts;

-- name: create_processed
-- Exercise 4.2: the processed zone's table, as the lab registers it from Athena.
CREATE EXTERNAL TABLE IF NOT EXISTS ${processed_table}(
  transaction_date timestamp,
  price double,
  amount double,
  dollar_amount double,
  type string,
  trans_id bigint)
PARTITIONED BY (
  symbol string,
  year integer,
  month integer,
  day integer,
  hour integer)
ROW FORMAT SERDE
  'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'
STORED AS INPUTFORMAT
  'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat'
OUTPUTFORMAT
  'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat'
LOCATION
  '${processed_location}';

-- name: repair_processed
MSCK REPAIR TABLE ${processed_table};

-- name: raw_btc_first_hour
-- Exercise 4.3: reconciliation of the first hourly bucket, raw zone ...
SELECT count(*) AS raw_count
FROM ${raw_table}
WHERE symbol = 'BTC_USD' AND date_format(from_unixtime(transaction_ts), '%Y-%m-%dT%H') = '2020-10-01T00';

-- name: processed_btc_first_hour
-- ... and processed zone (partition pruning on the event-time partitions).
SELECT count(*) AS processed_count
FROM ${processed_table}
WHERE hour = 0 AND day = 1 AND month = 10 AND year = 2020 AND symbol = 'BTC_USD';
