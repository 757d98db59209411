"""Kinesis arithmetic over Kafka partitions: hash ranges, sequence numbers, shard iterators."""

import hashlib
import random

import pytest

from aws.kinesis.shards import (
    HASH_SPACE, ShardIterator, hash_key_ranges, parse_sequence_number, partition_key_hash, partition_of,
    sequence_number, shard_for_hash, shard_id,
)

pytestmark = pytest.mark.unit


def test_hash_ranges_are_kinesis_own_split():
    # what Kinesis answers for a new 3-shard stream
    assert hash_key_ranges(3) == [
        (0, 113427455640312821154458202477256070484),
        (113427455640312821154458202477256070485, 226854911280625642308916404954512140969),
        (226854911280625642308916404954512140970, 340282366920938463463374607431768211455)]
    assert hash_key_ranges(1) == [(0, HASH_SPACE - 1)]


@pytest.mark.parametrize("shards", [1, 2, 3, 4, 7, 10, 64, 200])
def test_hash_ranges_cover_the_space_without_gaps_and_route_their_bounds(shards):
    ranges = hash_key_ranges(shards)
    assert ranges[0][0] == 0 and ranges[-1][1] == HASH_SPACE - 1
    assert all(end + 1 == next_start for (_, end), (next_start, _) in zip(ranges, ranges[1:]))
    for shard, (start, end) in enumerate(ranges):
        assert shard_for_hash(start, shards) == shard == shard_for_hash(end, shards)
    with pytest.raises(ValueError):
        shard_for_hash(HASH_SPACE, shards)


def test_a_partition_key_hashes_to_its_md5_as_a_128_bit_number():
    assert partition_key_hash("device-1") == int(hashlib.md5(b"device-1").hexdigest(), 16)
    assert partition_key_hash("ü") == int(hashlib.md5("ü".encode()).hexdigest(), 16)


def test_sequence_numbers_map_back_and_sort_by_offset_within_a_shard():
    offsets = random.Random(7).sample(range(10**12), 200) + [0, 1, 9, 10, 2**63 - 1]
    numbers = [sequence_number(5, offset) for offset in offsets]
    assert [parse_sequence_number(n) for n in numbers] == [(5, offset) for offset in offsets]
    assert sorted(numbers) == [sequence_number(5, o) for o in sorted(offsets)]  # as strings
    assert sorted(numbers, key=int) == sorted(numbers)  # and as numbers, as SDKs compare them
    assert all(len(n) == 32 and n[0] != "0" for n in numbers)
    for bad in ["", "12", "49" + "0" * 29, sequence_number(1, 2) + "0", "x" * 32]:
        with pytest.raises(ValueError):
            parse_sequence_number(bad)


def test_shard_ids_are_kinesis_shaped():
    assert shard_id(3) == "shardId-000000000003"
    assert partition_of("shardId-000000000003") == 3 == partition_of("3")
    with pytest.raises(ValueError):
        partition_of("shard-3")


def test_iterators_round_trip_expire_after_five_minutes_and_refuse_garbage():
    iterator = ShardIterator("iot-events", 2, 41, issued_ms=1_000_000)
    token = iterator.encode()
    assert ShardIterator.decode(token) == iterator and len(token) <= 512
    assert not iterator.expired(1_000_000 + 300_000) and iterator.expired(1_000_000 + 300_001)
    for garbage in ["", "garbage", "W10=", "WyJ2MSIsInMiLC0xLDAsMF0=", token[:-4]]:  # W10= is "[]"; then offset -1
        with pytest.raises(ValueError):
            ShardIterator.decode(garbage)
