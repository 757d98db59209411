import os
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from lakelab.settings import Settings, versions

pytestmark = pytest.mark.unit


def test_env_overrides_endpoints_and_secrets(monkeypatch):
    monkeypatch.setenv("LAKELAB_TRINO_URL", "http://127.0.0.1:18080")
    monkeypatch.setenv("LAKELAB_S3_SECRET_KEY", "from-env")
    settings = Settings()
    assert settings.trino_url == "http://127.0.0.1:18080"
    assert settings.port_of(settings.trino_url) == 18080
    assert settings.s3_secret_key.get_secret_value() == "from-env"
    assert "from-env" not in repr(settings)


def test_child_env_exposes_settings_to_config_files(monkeypatch):
    monkeypatch.setenv("LAKELAB_METASTORE_URI", "thrift://127.0.0.1:19083")
    env = Settings().child_env()
    assert env["LAKELAB_METASTORE_URI"] == "thrift://127.0.0.1:19083"


def test_a_service_process_gets_only_the_secrets_it_uses(monkeypatch):
    monkeypatch.setenv("LAKELAB_PG_PASSWORD", "pg-secret-of-the-test")
    monkeypatch.setenv("LAKELAB_S3_SECRET_KEY", "s3-secret-of-the-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "inherited-secret")
    settings = Settings()
    values = set(settings.child_env().values())
    assert not values & {"pg-secret-of-the-test", "s3-secret-of-the-test", "inherited-secret"}
    assert not {name for name in settings.child_env() if name.endswith(("_SECRET_KEY", "_PASSWORD"))}
    connect = settings.child_env(("pg_password",))
    assert connect["LAKELAB_PG_PASSWORD"] == "pg-secret-of-the-test"
    assert "s3-secret-of-the-test" not in connect.values()


def test_mode_is_validated(monkeypatch):
    monkeypatch.setenv("LAKELAB_MODE", "kubernetes")
    with pytest.raises(ValidationError):
        Settings()


def test_cache_dir_is_outside_the_checkout_and_overridable(monkeypatch, tmp_path):
    assert not str(Settings().cache_dir).startswith(str(Path(__file__).parents[2]))
    monkeypatch.setenv("LAKELAB_CACHE_DIR", str(tmp_path))
    assert Settings().cache_dir == tmp_path


def test_relative_and_home_folders_are_made_absolute_once(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LAKELAB_CACHE_DIR", "downloads")
    monkeypatch.setenv("LAKELAB_STATE_DIR", "~/lake")
    settings = Settings()
    assert settings.cache_dir == tmp_path / "downloads"
    assert settings.state_dir == tmp_path / "home" / "lake"
    # what a service started in another folder reads
    child = settings.child_env()
    assert child["LAKELAB_CACHE_DIR"] == str(tmp_path / "downloads")
    assert child["LAKELAB_STATE_DIR"] == str(tmp_path / "home" / "lake")


def test_versions_file_pins_every_component():
    pinned = versions()
    for component in ("spark", "hudi", "kafka", "debezium", "trino", "hive_metastore", "postgresql", "seaweedfs"):
        assert component in pinned, component
    assert pinned["spark"]["hadoop"] == "3.3.4"


@pytest.mark.unit
def test_a_new_state_folder_at_an_old_path_gets_a_new_postgres_database(tmp_path):
    """A clone deleted and made again at the same path (a CI checkout) must not find the old
    clone's PostgreSQL data, initialised with the old clone's password."""
    state = tmp_path / "checkout" / ".lakelab"
    state.mkdir(parents=True)
    first = Settings(state_dir=state).postgres_data_dir
    if os.geteuid() != 0:
        first.mkdir(parents=True)  # initdb's folder: a user's is inside the checkout
    assert Settings(state_dir=state).postgres_data_dir == first  # stable while the state folder lives
    shutil.rmtree(state)
    second = Settings(state_dir=state).postgres_data_dir
    if os.geteuid() == 0:  # as root the data lives outside the checkout, named by the state folder's id
        assert second != first and second.parent.parent == first.parent.parent
    else:
        assert second == state / "data" / "postgres" and not second.exists()
