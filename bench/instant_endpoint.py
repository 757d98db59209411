"""An HTTP server that answers each Kinesis record call at once with a fixed answer, reading only
the request's framing and its X-Amz-Target: no signature check, no JSON, no Kafka. What boto3
reaches against it is the most any endpoint can give a boto3 client on this machine
(`bench/aws_api.py`); it runs in a process of its own so that it takes nothing from the client's
interpreter.

`python -m bench.instant_endpoint --put-records 500 --get-records 10000 --data-bytes 150` prints
the port it listens on (127.0.0.1), then serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json

TARGET = b"x-amz-target"


def answers(put_records: int, get_records: int, data_bytes: int) -> dict[bytes, bytes]:
    """The HTTP answer to each operation, by X-Amz-Target in lower case."""
    put = {"ShardId": "shardId-000000000000", "SequenceNumber": "49" + "0" * 30}
    record = {"SequenceNumber": "49" + "0" * 30, "ApproximateArrivalTimestamp": 1764633600.123,
              "Data": base64.b64encode(b"x" * data_bytes).decode(), "PartitionKey": "BTC_USD"}
    bodies = {
        "PutRecord": {**put, "EncryptionType": "NONE"},
        "PutRecords": {"FailedRecordCount": 0, "EncryptionType": "NONE", "Records": [put] * put_records},
        "GetRecords": {"Records": [record] * get_records, "NextShardIterator": "instant", "MillisBehindLatest": 0},
    }
    return {f"kinesis_20131202.{operation}".lower().encode(): _http(json.dumps(body).encode())
            for operation, body in bodies.items()}


def _http(body: bytes, status: bytes = b"200 OK") -> bytes:
    return (b"HTTP/1.1 %s\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-RequestId: instant\r\n"
            b"Content-Length: %d\r\n\r\n" % (status, len(body))) + body


UNKNOWN = _http(b'{"__type": "UnknownOperationException"}', b"400 Bad Request")


class InstantAnswer(asyncio.Protocol):
    def __init__(self, answers: dict[bytes, bytes]) -> None:
        self.answers, self.received = answers, bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += data
        while (end := self.received.find(b"\r\n\r\n")) >= 0:
            headers = dict(line.partition(b":")[::2] for line in bytes(self.received[:end]).lower().split(b"\r\n"))
            length = int(headers.get(b"content-length", 0))
            if len(self.received) < end + 4 + length:
                return
            del self.received[:end + 4 + length]
            self.transport.write(self.answers.get(headers.get(TARGET, b"").strip(), UNKNOWN))


async def serve(answers: dict[bytes, bytes]) -> None:
    server = await asyncio.get_running_loop().create_server(lambda: InstantAnswer(answers), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.instant_endpoint")
    parser.add_argument("--put-records", type=int, required=True, help="records in the PutRecords answer")
    parser.add_argument("--get-records", type=int, required=True, help="records in the GetRecords answer")
    parser.add_argument("--data-bytes", type=int, required=True, help="bytes of each record GetRecords answers")
    args = parser.parse_args()
    asyncio.run(serve(answers(args.put_records, args.get_records, args.data_bytes)))


if __name__ == "__main__":
    main()
