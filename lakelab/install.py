"""Installing what the services need, from package registries, into the per-user cache.

Java artifacts come from Maven Central through `mvn` (its local repository lives in the cache, so
a fresh clone on the same machine reuses every jar); system packages come from Debian's apt.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from xml.sax.saxutils import escape

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

from lakelab.settings import Settings

console = Console(stderr=True)


class InstallError(RuntimeError):
    """A download or install step failed; the message names what and why."""


def _pom(artifacts: Iterable[str]) -> str:
    deps = []
    for coordinate in artifacts:
        group, artifact, version, *rest = coordinate.split(":")
        packaging = f"<type>{escape(rest[0])}</type>" if rest else ""
        deps.append(
            f"<dependency><groupId>{escape(group)}</groupId><artifactId>{escape(artifact)}</artifactId>"
            f"<version>{escape(version)}</version>{packaging}</dependency>"
        )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        "<groupId>lakelab</groupId><artifactId>resolve</artifactId><version>1</version>"
        f"<dependencies>{''.join(deps)}</dependencies></project>"
    )


def _mvn(settings: Settings, label: str, args: list[str]) -> None:
    if shutil.which("mvn") is None:
        raise InstallError("Maven (`mvn`) is not installed; run `lakelab install` or `apt-get install maven`")
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    command = ["mvn", "-B", "-ntp", f"-Dmaven.repo.local={settings.cache_dir / 'm2'}", *args]
    with console.status(f"[bold]downloading {label} from Maven Central[/]"):
        result = subprocess.run(command, capture_output=True, text=True, cwd=settings.cache_dir)
    if result.returncode != 0:
        errors = [line for line in result.stdout.splitlines() if "ERROR" in line][:8]
        raise InstallError(
            f"Maven could not resolve {label}:\n  "
            + "\n  ".join(errors or result.stdout.splitlines()[-8:])
            + f"\n  command: {' '.join(command)}"
        )


def maven_classpath(settings: Settings, label: str, artifacts: list[str]) -> list[Path]:
    """Resolve artifacts with their transitive dependencies; returns the jar paths (cached)."""
    key = hashlib.sha1("\n".join(artifacts).encode()).hexdigest()[:12]
    work = settings.cache_dir / "maven" / f"{label}-{key}"
    resolved = work / "classpath.txt"
    if resolved.exists():
        entries = [p for p in resolved.read_text().split(os.pathsep) if p]
        # absolute: written where the cache was before it was copied or restored here
        if not any(map(os.path.isabs, entries)) and all((settings.cache_dir / p).exists() for p in entries):
            return [settings.cache_dir / p for p in entries]
    work.mkdir(parents=True, exist_ok=True)
    (work / "pom.xml").write_text(_pom(artifacts))
    _mvn(settings, label, ["-f", str(work / "pom.xml"), "dependency:build-classpath", f"-Dmdep.outputFile={resolved}"])
    jars = [Path(p) for p in resolved.read_text().split(os.pathsep) if p]
    # kept relative to the cache, so a cache copied or restored elsewhere is still used
    resolved.write_text(os.pathsep.join(os.path.relpath(j, settings.cache_dir) for j in jars))
    return jars


def maven_artifacts(settings: Settings, label: str, artifacts: list[str]) -> list[Path]:
    """Fetch exactly these artifacts, without their dependencies (e.g. Spark's extra jars)."""
    paths = [repo_path(settings, a) for a in artifacts]
    for coordinate, path in zip(artifacts, paths):
        if not path.exists():
            _mvn(settings, f"{label} ({coordinate})", ["dependency:get", f"-Dartifact={coordinate}", "-Dtransitive=false"])
    return paths


def repo_path(settings: Settings, coordinate: str) -> Path:
    """`group:artifact:version[:extension[:classifier]]`, as `mvn dependency:get` takes it."""
    group, artifact, version, *rest = coordinate.split(":")
    extension = rest[0] if rest else "jar"
    classifier = f"-{rest[1]}" if len(rest) > 1 else ""
    return (
        settings.cache_dir / "m2" / Path(*group.split(".")) / artifact / version
        / f"{artifact}-{version}{classifier}.{extension}"
    )


def extract(archive: Path, dest: Path, keep: Callable[[str], bool]) -> None:
    """Extract the members `keep` accepts, with a progress bar; atomic via a temp folder."""
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    size = archive.stat().st_size
    with Progress(TextColumn(f"extracting {archive.name}"), BarColumn(), DownloadColumn(), console=console) as bar:
        task = bar.add_task("extract", total=size)
        with open(archive, "rb") as raw, tarfile.open(fileobj=raw, mode="r:gz") as tar:
            for member in tar:
                bar.update(task, completed=raw.tell())
                if keep(member.name):
                    # the `filter` argument (PEP 706) came with Python 3.11.4; Debian 12's is 3.11.2
                    tar.extract(member, tmp, **({"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}))
            bar.update(task, completed=size)
    top = next(tmp.iterdir())
    shutil.rmtree(dest, ignore_errors=True)
    top.rename(dest)
    tmp.rmdir()


def ensure_prerequisites() -> None:
    """Build tools every Java service needs: Maven to resolve jars, a JDK 17 to run them."""
    ensure_debian_packages({"/usr/bin/mvn": "maven", "/usr/bin/java": "openjdk-17-jre-headless"})


# apt-get's words when another package manager holds the dpkg lock (unattended upgrades at boot).
LOCK_HELD = re.compile(r"Could not get lock (\S+)(?:\. It is held by process (\d+) \(([^)]+)\))?")


def _as_root(missing: list[str]) -> list[str]:
    """What runs apt-get as root: nothing for root; for a user, `sudo`, asked for its password
    here, once, on the terminal (not under a spinner)."""
    if os.geteuid() == 0:
        return []
    by_hand = f"as root, run `apt-get install {' '.join(missing)}`, then this again"
    if shutil.which("sudo") is None:
        raise InstallError(f"Debian packages missing ({' '.join(missing)}) and this user is not root "
                           f"and has no `sudo`: {by_hand}")
    if subprocess.run(["sudo", "-v"]).returncode != 0:
        raise InstallError(f"`sudo` refused to run apt-get for {' '.join(missing)}: {by_hand}")
    # sudo resets the environment apt-get would read
    return ["sudo", "env", "DEBIAN_FRONTEND=noninteractive"]


def ensure_debian_packages(packages: dict[str, str], lock_wait_s: float = 600.0) -> None:
    """`packages` maps an executable path to the Debian package that provides it. While another
    apt or dpkg holds the package lock, wait (up to `lock_wait_s`) and say who holds it."""
    missing = sorted({pkg for path, pkg in packages.items() if not Path(path).exists()})
    if not missing:
        return
    console.print(f"installing Debian packages: {' '.join(missing)}")
    sudo = _as_root(missing)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        deadline = time.monotonic() + lock_wait_s
        with console.status(f"{' '.join(command)}") as status:
            while (result := subprocess.run(sudo + command, capture_output=True, text=True, env=env)).returncode:
                held = LOCK_HELD.search(result.stderr)
                if not held or time.monotonic() > deadline:
                    waited = f" after waiting {lock_wait_s:.0f} s for {held.group(1)}" if held else ""
                    raise InstallError(f"`{' '.join(command)}` failed{waited}:\n{result.stderr.strip()[-2000:]}")
                holder = f"{held.group(3)} (PID {held.group(2)})" if held.group(2) else "another package manager"
                status.update(f"waiting for {held.group(1)}, held by {holder}: "
                              f"{deadline - time.monotonic():.0f} s left")
                time.sleep(2)
