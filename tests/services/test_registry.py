import pytest

from services.registry import SERVICES, by_name

pytestmark = pytest.mark.unit


def test_dependencies_are_known_services_without_a_cycle():
    started: list[str] = []
    pending = list(SERVICES)
    while pending:  # what `lakelab up` can start: services whose dependencies are up
        startable = [s for s in pending if all(d in started for d in s.depends_on)]
        assert startable, f"dependency cycle among {[s.name for s in pending]}"
        started += [s.name for s in startable]
        pending = [s for s in pending if s.name not in started]
    for service in SERVICES:
        assert {by_name(d).name for d in service.depends_on} == set(service.depends_on)


def test_a_service_needs_at_start_only_some_of_its_dependencies():
    for service in SERVICES:
        assert set(service.needed_to_start) <= set(service.depends_on), service.name
    assert by_name("trino").needed_to_start == (), "Trino's JVM starts without waiting for the metastore"


def test_unknown_service_is_named_in_the_error():
    with pytest.raises(KeyError, match="unknown service 'kafak'"):
        by_name("kafak")
