"""The trades lab run as the course writes it (tests/aws/course/: plain boto3, no lakelab import),
each script a subprocess whose whole environment is AWS_ENDPOINT_URL, the stack's credentials and a
region. The infrastructure the lab's Terraform declares is made with boto3 the same way; the
records go generator -> Kinesis -> Firehose -> raw zone -> crawler -> Athena."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pytest

from producers.lab_b import sample_trades, write_csv
from services.s3.client import delete_prefix
from services.s3.client import get_client as s3_client
from tests.aws.awskit import client, course_env, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]

COURSE = Path(__file__).parent / "course"
BUCKET = "datalake"
TRADES = 150
ROLE = "arn:aws:iam::000000000000:role/firehose-role-dev-000000000000-jk-12345"
HOUR_FOLDERS = "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"
HOURLY_TOP = """SELECT * FROM (
  SELECT date_format(from_unixtime(transaction_ts), '%Y-%m-%dT%H') AS HourlyBucket,
         rank() OVER (PARTITION BY date_format(from_unixtime(transaction_ts), '%Y-%m-%dT%H'), symbol, type
                      ORDER BY dollar_amount DESC) AS rnk,
         *
  FROM "{database}"."crawler_stockdata")
WHERE rnk = 1
ORDER BY HourlyBucket, symbol, type"""


def course_script(settings, script: str, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, str(COURSE / script), *args], env=course_env(settings),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture
def lab(settings, unique, tmp_path):
    """The lab's Terraform, made with boto3: stream, delivery stream, Glue database, crawler."""
    kinesis, firehose, glue = (client(settings, s) for s in ("kinesis", "firehose", "glue"))
    names = {"stream": f"test-aws-cryptostock-dev-{unique}", "firehose": f"test-aws-firehose-dev-{unique}",
             "database": f"test_aws_datalake_dev_{unique}", "crawler": f"test-aws-gc-raw-dev-{unique}",
             "prefix": f"test-aws/course-{unique}/"}
    kinesis.create_stream(StreamName=names["stream"], ShardCount=1)
    arn = kinesis.describe_stream_summary(StreamName=names["stream"])["StreamDescriptionSummary"]["StreamARN"]
    firehose.create_delivery_stream(
        DeliveryStreamName=names["firehose"], DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": arn, "RoleARN": ROLE},
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{BUCKET}",
            "Prefix": f"{names['prefix']}raw-zone/stockdata/{HOUR_FOLDERS}",
            "ErrorOutputPrefix": f"{names['prefix']}raw-zone/stockdata_errors/!{{firehose:error-output-type}}/"
                                 f"{HOUR_FOLDERS}",
            # the lab's 1 MB, and 2 s where it waits 60 s, so the test does not wait a minute
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 2}})
    glue.create_database(DatabaseInput={"Name": names["database"],
                                        "LocationUri": f"s3://{BUCKET}/{names['prefix']}catalog/"})
    glue.create_crawler(Name=names["crawler"], Role=ROLE, DatabaseName=names["database"], TablePrefix="crawler_",
                        Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/{names['prefix']}raw-zone/stockdata/"}]})
    names["csv"] = str(write_csv(sample_trades(hours=1)[:TRADES], tmp_path / "crypto_trades_20201001.csv"))
    try:
        yield names
    finally:
        glue.delete_crawler(Name=names["crawler"])
        glue.delete_database(Name=names["database"])
        firehose.delete_delivery_stream(DeliveryStreamName=names["firehose"])
        kinesis.delete_stream(StreamName=names["stream"])
        delete_prefix(settings, f"s3://{BUCKET}/{names['prefix']}")


def test_the_trades_lab_as_the_course_writes_it(settings, lab):
    with open(lab["csv"]) as handle:
        sent = [line.split(",") for line in handle.read().splitlines()[1:]]
    generated = course_script(settings, "generator.py", "-k", lab["stream"], "-i", lab["csv"], "-r")
    shipped = [line for line in generated.stdout.splitlines() if "sent to shard shardId-000000000000 seq no 49" in line]
    assert len(shipped) == TRADES

    read = course_script(settings, "read_stream.py", lab["stream"])
    trades = [json.loads(line) for line in read.stdout.splitlines()]
    assert [t["trans_id"] for t in trades] == [int(row[6]) for row in sent]
    assert trades[0] == {"transaction_ts": int(sent[0][0]), "symbol": sent[0][1], "price": float(sent[0][2]),
                         "amount": float(sent[0][3]), "dollar_amount": float(sent[0][4]), "type": sent[0][5],
                         "trans_id": int(sent[0][6])}

    s3 = s3_client(settings)
    raw = f"{lab['prefix']}raw-zone/stockdata/"
    arrived = datetime.now(timezone.utc)

    def delivered() -> int:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=raw).get("Contents", [])]
        return sum(len(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read().splitlines()) for k in keys)

    wait_for(f"{TRADES} trades in the raw zone", lambda: delivered() == TRADES, timeout_s=90)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=raw)["Contents"]]
    assert all(k.startswith(f"{raw}year={arrived:%Y}/month={arrived:%m}/day=") for k in keys), keys

    glue = client(settings, "glue")
    glue.start_crawler(Name=lab["crawler"])
    crawled = wait_for("the crawler", lambda: (c := glue.get_crawler(Name=lab["crawler"])["Crawler"])["State"] ==
                       "READY" and "LastCrawl" in c and c, timeout_s=120)
    assert crawled["LastCrawl"]["Status"] == "SUCCEEDED", crawled["LastCrawl"]

    output = f"s3://{BUCKET}/{lab['prefix']}athena_output/"
    answer = course_script(settings, "athena_query.py", lab["database"], output,
                           HOURLY_TOP.format(database=lab["database"]))
    top = json.loads(answer.stdout)
    expected: dict[tuple[str, str, str], float] = defaultdict(float)
    for row in sent:
        bucket = datetime.fromtimestamp(int(row[0]), timezone.utc).strftime("%Y-%m-%dT%H")
        expected[(bucket, row[1], row[5])] = max(expected[(bucket, row[1], row[5])], float(row[4]))
    assert {(r["HourlyBucket"], r["symbol"], r["type"]): float(r["dollar_amount"]) for r in top} == dict(expected)
    assert [r["HourlyBucket"] for r in top] == sorted(r["HourlyBucket"] for r in top)
    counted = course_script(settings, "athena_query.py", lab["database"], output,
                            'SELECT count(*) AS trades FROM "crawler_stockdata"')
    assert json.loads(counted.stdout) == [{"trades": str(TRADES)}]
