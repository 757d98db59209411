"""JVM class archives (AppCDS on Java 17, an AOT cache on Java 25): written at a JVM's exit, mapped
by its next start, removed when the JVM had to be killed while writing one."""
import subprocess

import psutil
import pytest

from services.base import archives_being_made, class_data_sharing, java17
from services.kafka.service import classpath as kafka_classpath
from services.supervisor import _terminate
from services.trino.service import java as java25


@pytest.mark.unit  # no stack: the installed Kafka jars and both JVMs
@pytest.mark.parametrize("java", [java17, java25], ids=["java17", "java25"])
def test_a_jvm_writes_its_class_archive_at_exit_and_its_next_start_maps_it(settings, tmp_path, java):
    archives = settings.model_copy(update={"cache_dir": tmp_path, "class_archives": True})
    jars = kafka_classpath(settings)
    main = "kafka.tools.StorageTool"

    def run(*strict: str) -> str:
        flags = class_data_sharing(archives, "kafka-storage", java(), jars, main)
        result = subprocess.run([java(), *flags, *strict, "-cp", jars, main, "random-uuid"],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    folder = tmp_path / "cds"
    folder.mkdir()
    older, other = folder / "kafka-storage-0123456789abcdef.jsa", folder / "kafka-0123456789abcdef.jsa"
    older.write_bytes(b"an archive of older jars")
    other.write_bytes(b"another service's archive")
    run()
    assert not older.exists() and other.exists()  # the service's older archive replaced, no other
    other.unlink()
    made = list(folder.iterdir())
    assert len(made) == 1 and made[0].name.startswith("kafka-storage-") and made[0].stat().st_size > 1_000_000, made
    made_at = made[0].stat().st_mtime_ns
    # sharing made mandatory: a JVM that cannot map the archive refuses to start. Java 17 would
    # map its default archive alone, so its log must show the dynamic archive (ours) mapped too.
    strict = ("-Xshare:on", "-Xlog:cds=info") if java is java17 else ("-XX:AOTMode=on",)
    output = run(*strict)
    assert len(output.splitlines()[-1]) == 22  # a Kafka cluster id, after the JVM's own lines
    assert java is not java17 or "Mapped dynamic region" in output, output[-2000:]
    assert list(folder.iterdir()) == made and made[0].stat().st_mtime_ns == made_at  # mapped, not made again


@pytest.mark.unit
def test_an_archive_a_killed_jvm_was_writing_is_removed(tmp_path):
    archive = tmp_path / "cds" / "kafka-0123.jsa"
    archive.parent.mkdir()
    archive.write_bytes(b"half an archive")
    # a process that ignores SIGTERM, started as a JVM writing `archive` at its exit would be
    script = "trap '' TERM; echo ready; while :; do sleep 0.1; done"
    command = ["sh", "-c", script, "sh", f"-XX:ArchiveClassesAtExit={archive}"]
    assert archives_being_made(command) == [archive]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "ready\n"
    _terminate(process.pid, grace_s=1)
    assert not psutil.pid_exists(process.pid)
    assert not archive.exists()
