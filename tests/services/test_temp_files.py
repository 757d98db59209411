"""What the stack's processes leave in the machine's /tmp: nothing. A Spark driver's temporary files
(Spark's blocks, Hive's session resources, S3A's upload buffers, the native libraries snappy and lz4
unpack) go to a folder of its own under the state folder, removed when it exits, or by the next
driver when it was killed; SeaweedFS logs to its log file alone and keeps its S3 socket in its run
folder. Java writes to /tmp whatever TMPDIR says, so these tests look at /tmp itself."""
import os
import random
import signal
import socket
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import psutil
import pytest

from lakelab.resources import resources
from lakelab.settings import ROOT, Settings
from services import compose, supervisor
from services.s3.client import get_client
from services.s3.service import SERVICE as S3
from tests.api.apikit import free_port

MACHINE_TMP = Path("/tmp")  # Java's and SeaweedFS's, whatever TMPDIR says
LEFT_BY_SPARK = ("spark-*", "blockmgr-*", "*_resources", "liblz4-java-*", "snappy-*", "hadoop-*")

DRIVER = """
import os, signal, sys
from lakelab.settings import get_settings
from services.spark.client import get_session
spark = get_session(get_settings(), "temp-files-probe")
spark.sql("SHOW DATABASES").collect()  # a Hive session: its resources folder
spark.range(5000).repartition(2).write.mode("overwrite").parquet(sys.argv[1])  # S3A's buffers, snappy
print("DRIVER", os.getpid(), flush=True)
if sys.argv[2] == "kill":  # a crash: the driver's JVM too, before Spark's shutdown hook removes anything
    os.killpg(os.getpgid(0), signal.SIGKILL)
spark.stop()
"""


def _in_machine_tmp(patterns: tuple[str, ...]) -> set[str]:
    return {path.name for pattern in patterns for path in MACHINE_TMP.glob(pattern)}


def _driver(target: str, ending: str) -> int:
    result = subprocess.run([sys.executable, "-c", DRIVER, target, ending], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, start_new_session=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("DRIVER ")]
    assert lines, f"exit {result.returncode}: {result.stderr[-3000:]}"
    return int(lines[-1].split()[1])


@pytest.mark.integration
def test_a_killed_spark_driver_leaves_nothing_in_tmp_and_the_next_driver_removes_its_files(stack, unique):
    bucket = resources().buckets[0].name
    target = f"s3a://{bucket}/temp-files-{unique}/"
    before = _in_machine_tmp(LEFT_BY_SPARK)
    drivers = stack.temp_dir("spark-driver")
    try:
        killed = _driver(target, "kill")
        left = sorted(p.name for p in (drivers / str(killed)).iterdir())
        assert any(name.startswith("blockmgr-") for name in left), left
        assert any(name.endswith("_resources") for name in left), left
        assert "s3a" in left, left
        assert _in_machine_tmp(LEFT_BY_SPARK) - before == set()

        stopped = _driver(target, "stop")
        assert not (drivers / str(killed)).exists()  # its driver gone, the next one removed it
        assert not (drivers / str(stopped)).exists()  # removed at its exit
        assert _in_machine_tmp(LEFT_BY_SPARK) - before == set()
    finally:
        s3 = get_client(stack)
        for item in s3.list_objects_v2(Bucket=bucket, Prefix=f"temp-files-{unique}/").get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"])


@pytest.mark.integration
def test_seaweedfs_keeps_its_log_and_s3_socket_out_of_tmp(stack):
    """Nor the filer's socket. Its gRPC servers' sockets stay in /tmp while it runs
    (`/tmp/seaweedfs-<server>-grpc-<port>.sock` is fixed in SeaweedFS 4.48): the next test."""
    port = stack.port_of(stack.s3_endpoint)
    own = ("weed.*", f"seaweedfs-s3-{port}.sock", f"seaweedfs-filer-{stack.s3_filer_port}.sock")
    if stack.mode == "compose":
        listing = compose.exec_in(stack, "s3", "sh", "-c", "cd /tmp && ls -A")
        assert listing.returncode == 0, listing.stderr
        left = [name for name in listing.stdout.split() if name.startswith("weed.") or name in own]
        assert not left, listing.stdout
        return
    weed = psutil.Process(supervisor.running_pid(stack, "s3"))
    sockets = {connection.laddr for connection in weed.net_connections(kind="unix") if connection.laddr}
    assert {str(stack.run_dir("s3") / "s3.sock"), str(stack.run_dir("s3") / "filer.sock")} <= sockets, sockets
    opened = [file.path for file in weed.open_files()]
    assert not [path for path in opened if path.startswith(f"{MACHINE_TMP}/")], opened
    made_since = [name for name in _in_machine_tmp(own) if (MACHINE_TMP / name).stat().st_mtime >= weed.create_time()]
    assert not made_since, made_since


def _free_port_and_its_grpc_port() -> int:
    """A free port whose SeaweedFS gRPC port (+ 10000) is free too."""
    while True:
        port = random.randint(20000, 30000)
        with socket.socket() as http, socket.socket() as grpc:
            try:
                http.bind(("127.0.0.1", port))
                grpc.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


@pytest.mark.unit  # no stack: a SeaweedFS of its own, on free ports
def test_down_removes_the_sockets_a_killed_seaweedfs_left_in_tmp(tmp_path):
    """SeaweedFS keeps its gRPC servers' sockets in /tmp, at paths fixed in its code; a killed
    `weed` leaves them there (and a clean stop once left the admin server's). `down` removes
    those nothing listens on, not one that another process listens on."""
    ports = {name: _free_port_and_its_grpc_port() for name in ("s3_port", "s3_master_port", "s3_volume_port",
                                                                "s3_admin_port", "s3_filer_port")}
    settings = Settings(state_dir=tmp_path / "state", s3_filer_grpc_port=free_port(), **ports)
    sockets = S3.stray_sockets(settings)
    assert len(sockets) == 5 and all(path.parent == MACHINE_TMP for path in sockets), sockets
    pid = supervisor._spawn(settings, S3)
    listener = socket.socket(socket.AF_UNIX)
    try:
        deadline = time.monotonic() + 60
        while not all(path.exists() for path in sockets):
            assert supervisor.running_pid(settings, "s3") and time.monotonic() < deadline, \
                [path for path in sockets if not path.exists()]
            time.sleep(0.2)
        os.killpg(pid, signal.SIGKILL)  # a crash
        psutil.wait_procs([psutil.Process(pid)], timeout=10)
        assert all(path.exists() for path in sockets)  # what it leaves
        taken, *stray = sockets
        taken.unlink()
        listener.bind(str(taken))  # another process listening at one of those paths
        listener.listen()

        supervisor._stop(settings, [S3])

        assert [path for path in stray if path.exists()] == []
        assert taken.exists()
    finally:
        listener.close()
        with suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        for path in sockets:
            path.unlink(missing_ok=True)
