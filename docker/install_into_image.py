"""Build time only (docker/Dockerfile, stage `install`): native mode's installer, `lakelab install`,
into $LAKELAB_CACHE_DIR, seeded from the host's download cache the build mounts (docker/cache-seed.sh),
then every file of the Maven repository that no service reads is dropped (Maven's own plugins,
release tarballs already unpacked), so the image holds what versions.toml pins and nothing else.

Usage: python docker/install_into_image.py SEED_DIR"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import lakelab.install as installer

# Record every file the installer resolves. Patched before the service modules are imported, as
# they import these functions by name.
used: set[Path] = set()
for name in ("maven_classpath", "maven_artifacts"):
    original = getattr(installer, name)

    def recording(*args, _original=original, **kwargs):
        paths = _original(*args, **kwargs)
        used.update(paths)
        return paths

    setattr(installer, name, recording)

from lakelab.settings import Settings, get_settings  # noqa: E402
from services import supervisor  # noqa: E402
from services.metastore.service import home as metastore_home  # noqa: E402
from services.trino.service import server_dir as trino_home  # noqa: E402


def seed(settings: Settings, source: Path) -> None:
    """Copy the host's Maven repository and the unpacked releases this versions.toml names."""
    began = time.monotonic()
    cache = settings.cache_dir
    cache.mkdir(parents=True, exist_ok=True)
    # `cp -a`, not shutil.copytree: the Trino release hard-links the jars its plugins share
    if (source / "m2").is_dir() and not (cache / "m2").exists():
        subprocess.run(["cp", "-a", str(source / "m2"), str(cache / "m2")], check=True)
    for release in (trino_home(settings), metastore_home(settings)):
        if (source / release.name / "lib").is_dir() and not release.exists():
            subprocess.run(["cp", "-a", str(source / release.name), str(release)], check=True)
    print(f"seeded {cache} from {source} in {time.monotonic() - began:.1f} s", flush=True)


def prune(settings: Settings) -> None:
    m2 = settings.cache_dir / "m2"
    keep = {p.resolve() for p in used if not p.name.endswith(".tar.gz")}
    dropped = 0
    for path in sorted(m2.rglob("*"), reverse=True):
        if path.is_file() and path.resolve() not in keep:
            dropped += path.stat().st_size
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    print(f"kept {len(keep)} jars, dropped {dropped / 1e6:.0f} MB of the Maven repository", flush=True)


def main() -> None:
    settings = get_settings()
    seed(settings, Path(sys.argv[1]))
    began = time.monotonic()
    supervisor.install(settings)
    print(f"lakelab install: {time.monotonic() - began:.1f} s", flush=True)
    prune(settings)


if __name__ == "__main__":
    main()
