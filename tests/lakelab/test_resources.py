import pytest
import yaml

from lakelab.resources import Resources, load_resources
from lakelab.settings import ROOT

pytestmark = pytest.mark.unit


def test_declared_resources_cover_the_labs():
    resources = load_resources()
    assert {"raw", "processed", "datalake"} <= {b.name for b in resources.buckets}
    datalake = next(b for b in resources.buckets if b.name == "datalake")
    assert {"raw-zone/", "processed-zone/"} <= set(datalake.prefixes)
    assert "metastore" in resources.postgres_databases
    assert resources.labs.lab_a.location == "s3a://warehouse/hudi_demo_table"
    assert resources.labs.lab_b.raw_prefix == "raw-zone/stockdata/"


def test_a_lab_name_that_is_not_declared_is_refused():
    document = yaml.safe_load((ROOT / "resources.yaml").read_text())
    document["labs"]["lab_b"]["topic"] = "no-such-topic"
    document["labs"]["lab_c"]["raw_bucket"] = "no-such-bucket"
    with pytest.raises(ValueError, match="topic 'no-such-topic'.*bucket 'no-such-bucket'|bucket 'no-such-bucket'.*topic 'no-such-topic'"):
        Resources.model_validate(document)
