import re

import pytest

from lakelab.resources import resources
from producers.lab_d import DDL, TABLES

pytestmark = pytest.mark.unit


def test_the_shop_ddl_creates_exactly_the_declared_source_tables():
    created = re.findall(r"CREATE TABLE IF NOT EXISTS \{schema\}\.(\w+)", DDL)
    assert created == list(TABLES) == resources().labs.lab_d.source_tables
