import socket

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
