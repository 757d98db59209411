"""Hive Metastore (the Glue Data Catalog stand-in): Apache Hive's standalone metastore from Maven
Central, run as a Thrift service listening on the settings' host only (127.0.0.1), backed by the
stack's PostgreSQL (schema made by its schematool), with s3a:// locations.

Hive 4.0.0 exactly: it is the first release with `metastore.thrift.bind.host` (Hive 2.3 and 3.1
always listen on every interface) and the last that keeps the `get_table` call which Spark 3.5's
built-in Hive 2.3 client and Hudi's hive sync use (4.0.1 removed it)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from psycopg import sql
from thrift.Thrift import TException
from thrift.transport.TTransport import TTransportException

from lakelab.install import InstallError, extract, maven_artifacts, maven_classpath
from lakelab.settings import Settings, versions
from services.base import C1_ONLY, NotReady, Service, class_data_sharing, java17, java_temp_dir, render, run_setup_tool
from services.metastore.client import get_client
from services.postgres import client as postgres

HERE = Path(__file__).parent
DATABASE = "metastore"  # the PostgreSQL database (resources.yaml `postgres_databases`)


def _versions() -> dict:
    return versions()["hive_metastore"]


def home(settings: Settings) -> Path:
    """The unpacked binary release: its `lib/` jars and the PostgreSQL schema scripts."""
    return settings.cache_dir / f"hive-metastore-{_versions()['version']}"


def _install_home(settings: Settings) -> Path:
    if (home(settings) / "lib").exists():
        return home(settings)
    coordinate = f"org.apache.hive:hive-standalone-metastore-server:{_versions()['version']}:tar.gz:bin"
    (tarball,) = maven_artifacts(settings, "hive-metastore", [coordinate])
    extract(tarball, home(settings), keep=lambda name: (
        (name.endswith(".jar") and "/lib/" in name) or "/scripts/metastore/upgrade/postgres/" in name))
    return home(settings)


def _hadoop_jars(settings: Settings) -> list[Path]:
    """The Hadoop the release is built against (it ships none), with S3A at that version."""
    v = _versions()
    jars = maven_classpath(settings, "hive-metastore-hadoop", [
        f"org.apache.hadoop:hadoop-common:{v['hadoop']}",
        f"org.apache.hadoop:hadoop-hdfs-client:{v['hadoop']}",
        f"org.apache.hadoop:hadoop-mapreduce-client-core:{v['hadoop']}",
        f"org.apache.hadoop:hadoop-aws:{v['hadoop']}",
        f"com.amazonaws:aws-java-sdk-bundle:{v['aws_java_sdk_bundle']}",
    ])
    # The metastore loads two classes of the HDFS server jar (SnapshotException, DFSConfigKeys)
    # on ordinary DDL; that jar alone, without its dependencies.
    hdfs = f"org.apache.hadoop:hadoop-hdfs:{v['hadoop']}"
    return jars + maven_artifacts(settings, "hive-metastore-hdfs", [hdfs])


def _jdbc_driver(settings: Settings) -> list[Path]:
    return maven_artifacts(settings, "postgresql-jdbc", [f"org.postgresql:postgresql:{versions()['postgresql']['jdbc']}"])


def _install(settings: Settings) -> None:
    _install_home(settings)
    _hadoop_jars(settings)
    _jdbc_driver(settings)


def _conf_dir(settings: Settings) -> Path:
    return settings.run_dir("metastore") / "conf"


def _java(settings: Settings, name: str, main: str, *args: str) -> list[str]:
    # Hive's own jars first (as its launcher does), then Hadoop's; our JDBC driver before the
    # older one the release ships. hive-site.xml is found through METASTORE_CONF_DIR (`_env`),
    # not the class path: a folder there would keep the JVM from archiving its classes.
    classpath = [*map(str, _jdbc_driver(settings)), f"{_install_home(settings)}/lib/*",
                 *map(str, _hadoop_jars(settings))]
    java, joined = java17(), ":".join(classpath)
    return [
        java, "-Xms256m", "-Xmx512m", C1_ONLY, *class_data_sharing(settings, name, java, joined, main),
        java_temp_dir(settings, name),
        f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}", "-cp", joined, main, *args,
    ]


def _schema_version(settings: Settings) -> str | None:
    """The schema version the metastore database records; None when it holds no schema at all."""
    with postgres.get_client(settings, DATABASE) as conn:
        if conn.execute("""SELECT to_regclass('"DBS"')""").fetchone()[0] is None:
            return None
        if conn.execute("""SELECT to_regclass('"VERSION"')""").fetchone()[0] is None:
            return ""
        row = conn.execute('SELECT "SCHEMA_VERSION" FROM "VERSION"').fetchone()
        return row[0] if row else ""


# Hive 4 puts a managed table under the database's MANAGEDLOCATION, or when that is unset under
# the warehouse root, not under the database's LOCATION as Hive 2.3 did. Spark's Hive 2.3 client
# and Trino only set LOCATION, so Spark's managed tables would be registered at a path Spark does
# not write to. Default MANAGEDLOCATION to LOCATION: Hive 2.3's behaviour.
_MANAGED_LOCATION_TRIGGER = """
CREATE OR REPLACE FUNCTION lakelab_db_managed_location() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW."DB_MANAGED_LOCATION_URI" := COALESCE(NEW."DB_MANAGED_LOCATION_URI", NEW."DB_LOCATION_URI");
  RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER lakelab_db_managed_location BEFORE INSERT ON "DBS"
  FOR EACH ROW EXECUTE FUNCTION lakelab_db_managed_location();
"""


def _ensure_schema(settings: Settings) -> None:
    """Create the metastore schema with Hive's schematool on first start; refuse another version."""
    wanted = _versions()["version"]
    found = _schema_version(settings)
    if found is None:
        command = _java(settings, "metastore-schematool",
                        "org.apache.hadoop.hive.metastore.tools.schematool.MetastoreSchemaTool",
                        "-initSchema", "-dbType", "postgres")
        env = {**settings.child_env(), **_env(settings), "METASTORE_HOME": str(_install_home(settings))}
        run_setup_tool(command, "Hive schematool -initSchema", env=env)
    elif found != wanted:
        raise InstallError(
            f"PostgreSQL database `{DATABASE}` holds a metastore schema of version "
            f"{found or 'unknown (made by DataNucleus, i.e. the former Hive 2.3 metastore)'}, "
            f"not Hive {wanted}. Drop it (`DROP DATABASE {DATABASE}`; Trino's schemas come back on "
            "the next `lakelab up`, tables from their jobs' hive sync) or run `lakelab reset`."
        )
    with postgres.get_client(settings, DATABASE, autocommit=True) as conn:
        conn.execute(_MANAGED_LOCATION_TRIGGER)


def bind_host(settings: Settings) -> str:
    """The metastore's listen address: the settings' bind host; every interface (in a container)
    is an empty value to Hive."""
    return "" if settings.bind_host == "0.0.0.0" else settings.bind_host


def _ensure_database(settings: Settings) -> None:
    """The metastore's PostgreSQL database (declared in resources.yaml, which `lakelab up` applies
    before the metastore starts natively); made here too, so that the metastore's container can
    start before anyone applied resources.yaml."""
    with postgres.get_client(settings, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))


def _prepare(settings: Settings) -> None:
    # hive-site.xml (0600) holds the S3 and PostgreSQL credentials: the process gets none by environment
    env = settings.child_env(secrets=("s3_secret_key", "pg_password"))
    values = {k: v for k, v in env.items() if k.startswith("LAKELAB_")}
    values |= {"METASTORE_DB": DATABASE, "METASTORE_BIND_HOST": bind_host(settings)}
    render(HERE / "hive-site.xml", _conf_dir(settings) / "hive-site.xml", values)
    _ensure_database(settings)
    _ensure_schema(settings)


def _env(settings: Settings) -> dict[str, str]:
    return {"METASTORE_CONF_DIR": str(_conf_dir(settings))}


def _command(settings: Settings) -> list[str]:
    port = str(urlparse(settings.metastore_uri).port)
    return _java(settings, "metastore", "org.apache.hadoop.hive.metastore.HiveMetaStore", "-p", port)


def _check(settings: Settings) -> None:
    try:
        get_client(settings, timeout_ms=5000).list_databases()
    except (TTransportException, TException) as exc:
        raise NotReady(f"metastore Thrift call failed: {exc}") from exc


SERVICE = Service(
    name="metastore",
    summary="Hive Metastore, Thrift",
    endpoint=lambda s: s.metastore_uri,
    install=_install,
    prepare=_prepare,
    command=_command,
    env=_env,
    check=_check,
    depends_on=("postgres", "s3"),
    config_secrets=("s3_secret_key", "pg_password"),  # in hive-site.xml
)
