"""JVM class archives (AppCDS on Java 17, an AOT cache on Java 25): written at a JVM's exit, mapped
by its next start, removed when the JVM had to be killed while writing one; for JVMs any process
starts (Spark drivers), each written under its own name and published by a later start."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from lakelab.settings import ROOT
from services.base import (
    DYNAMIC_ARCHIVE_MAGIC,
    archives_being_made,
    class_data_sharing,
    class_data_sharing_for_any_process,
    java17,
)
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


@pytest.mark.unit  # no stack: the installed Kafka jars and both JVMs
@pytest.mark.parametrize("java", [java17, java25], ids=["java17", "java25"])
def test_jars_installed_again_get_an_archive_of_their_own_that_the_jvm_maps(settings, tmp_path, java):
    """A JVM maps an archive only if each jar has the size and time it had when the archive was
    made; a new venv installs pyspark's jars again, with new times. Made mandatory, sharing shows
    whether the JVM maps what it is given."""
    archives = settings.model_copy(update={"cache_dir": tmp_path, "class_archives": True})
    lib = tmp_path / "lib"  # a `lib/*` class path, as Trino's and the metastore's are
    lib.mkdir()
    first, *others = map(Path, kafka_classpath(settings).split(":"))
    shutil.copy2(first, lib / first.name)  # the jar installed again below
    for jar in others:
        (lib / jar.name).symlink_to(jar)
    jars, main = f"{lib}/*", "kafka.tools.StorageTool"
    strict = ("-Xshare:on", "-Xlog:cds=info") if java is java17 else ("-XX:AOTMode=on",)

    def run(*flags: str) -> str:
        result = subprocess.run([java(), *class_data_sharing(archives, "kafka-storage", java(), jars, main), *flags,
                                 "-cp", jars, main, "random-uuid"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]
        assert java is not java17 or not flags or "Mapped dynamic region" in result.stdout, result.stdout[-2000:]
        return result.stdout

    run()  # makes the archive at its exit
    (made,) = (tmp_path / "cds").iterdir()
    run(*strict)  # maps it
    installed = time.time() + 60
    os.utime(lib / first.name, (installed, installed))  # the same bytes, installed again
    run()  # finds no archive of these jars: makes one
    (remade,) = (tmp_path / "cds").iterdir()
    assert remade != made  # the archive of the jars as they were is gone
    run(*strict)  # maps the new one (the old code kept giving it the first, which it refused)


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


@pytest.mark.unit  # no stack: the installed Kafka jars and Java 17
def test_jvms_started_at_once_write_their_own_archives_and_a_later_start_publishes_a_finished_one(
        settings, tmp_path):
    archives = settings.model_copy(update={"cache_dir": tmp_path, "class_archives": True})
    jars = kafka_classpath(settings)
    main = "kafka.tools.StorageTool"
    folder = tmp_path / "cds"

    def flags() -> list[str]:
        return class_data_sharing_for_any_process(archives, "kafka-storage", java17(), jars, main)

    def start(*strict: str, chosen: list[str] | None = None) -> subprocess.Popen:
        return subprocess.Popen([java17(), *(chosen or flags()), *strict, "-cp", jars, main, "random-uuid"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(process: subprocess.Popen) -> str:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err[-2000:]
        return out

    late = flags()  # a JVM that starts before any archive is published (run later)
    first, second = start(), start()  # both find no archive
    for process in (first, second):
        finish(process)
    parts = sorted(folder.glob("*.part"))
    assert len(parts) == 2 and not list(folder.glob("*.jsa")), list(folder.iterdir())
    assert all(part.read_bytes()[:4] == DYNAMIC_ARCHIVE_MAGIC for part in parts)
    unfinished = parts[0].with_name(parts[0].name.replace(parts[0].name.split(".")[-2], "0badc0de"))
    unfinished.write_bytes(bytes(4) + parts[0].read_bytes()[4:1_000_000])  # a JVM killed while writing
    # sharing made mandatory: the next start publishes a finished part and maps it
    output = finish(start("-Xshare:on", "-Xlog:cds=info"))
    assert "Mapped dynamic region" in output, output[-2000:]
    (archive,) = folder.iterdir()  # the other parts, the unfinished one included, are gone
    assert archive.suffix == ".jsa" and archive.stat().st_size > 1_000_000
    finish(start(chosen=late))  # it writes its own part at its exit, beside the archive
    assert len(list(folder.glob("*.part"))) == 1
    output = finish(start("-Xshare:on", "-Xlog:cds=info"))  # the next start maps the archive, removes the part
    assert "Mapped dynamic region" in output, output[-2000:]
    assert list(folder.iterdir()) == [archive]


@pytest.mark.unit  # no stack: local Spark drivers, with a download cache of their own for the archive
def test_a_spark_driver_writes_its_archive_at_exit_and_the_next_driver_maps_it(settings, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    for entry in settings.cache_dir.iterdir():  # the jars where they are; no class archives
        if entry.name != "cds":
            (cache / entry.name).symlink_to(entry)
    script = ("import psutil; from lakelab.settings import get_settings; "
              "from services.spark.client import get_session; "
              "spark = get_session(get_settings(), 'archive-test'); "
              "jvm = psutil.Process(spark.sparkContext._gateway.proc.pid); "
              "print(jvm.pid, [m.path for m in jvm.memory_maps() if '/cds/spark-driver-' in m.path])")

    def driver() -> tuple[int, str]:
        result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                                env={**os.environ, "LAKELAB_CACHE_DIR": str(cache), "LAKELAB_SPARK_MASTER": "local[1]",
                                     "LAKELAB_CLASS_ARCHIVES": "true"})
        assert result.returncode == 0, result.stderr[-3000:]
        pid, mapped = result.stdout.strip().splitlines()[-1].split(" ", 1)
        return int(pid), mapped

    pid, mapped = driver()
    assert mapped == "[]"  # no archive yet: this driver writes one when it exits, after its Python
    deadline = time.monotonic() + 120
    while psutil.pid_exists(pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [p.name.split(".")[-1] for p in (cache / "cds").iterdir()] == ["part"]
    pid, mapped = driver()
    (archive,) = (cache / "cds").iterdir()
    assert archive.suffix == ".jsa" and mapped == f"['{archive}']", mapped
