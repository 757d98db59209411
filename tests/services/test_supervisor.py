import os
import socket
import stat

import pytest

from lakelab.settings import Settings
from services.base import Service
from services.supervisor import StackError, _spawn

pytestmark = pytest.mark.unit


def test_port_already_taken_is_reported_with_its_owner(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        service = Service(name="demo", summary="", endpoint=lambda s: "", ports=lambda s: [port],
                          command=lambda s: ["true"], check=lambda s: None)
        with pytest.raises(StackError) as raised:
            _spawn(Settings(state_dir=tmp_path), service)
    assert f"port already taken: {port}" in str(raised.value)
    assert "demo" in str(raised.value)


def test_the_state_folder_is_private_though_a_service_makes_its_data_folder_first(tmp_path):
    """Services start in parallel; CI saw the state folder 0755 when SeaweedFS's data folder,
    made with `mkdir(parents=True)` in its prepare step, was the first thing in it."""
    settings = Settings(state_dir=tmp_path / "state")
    service = Service(name="demo", summary="", endpoint=lambda s: "", ports=lambda s: [],
                      command=lambda s: ["true"], check=lambda s: None,
                      prepare=lambda s: s.data_dir("demo").mkdir(parents=True))
    umask = os.umask(0o022)
    try:
        _spawn(settings, service)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(settings.state_dir.stat().st_mode) == 0o700
    assert settings.data_dir("demo").is_dir()
