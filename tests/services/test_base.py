from pathlib import Path

import pytest

from services.base import render

pytestmark = pytest.mark.unit


def test_render_fills_our_placeholders_and_keeps_nginx_variables(tmp_path: Path):
    template = tmp_path / "t.conf"
    template.write_text("server ${UPSTREAM}; proxy_set_header Host $host;")
    out = render(template, tmp_path / "out.conf", {"UPSTREAM": "127.0.0.1:8000"})
    assert out.read_text() == "server 127.0.0.1:8000; proxy_set_header Host $host;"
