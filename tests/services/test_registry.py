import pytest

from services.registry import SERVICES, by_name, start_waves

pytestmark = pytest.mark.unit


def test_every_service_starts_after_its_dependencies():
    position = {}
    for index, wave in enumerate(start_waves(SERVICES)):
        for service in wave:
            position[service.name] = index
    for service in SERVICES:
        for dependency in service.depends_on:
            assert position[dependency] < position[service.name], (service.name, dependency)


def test_unknown_service_is_named_in_the_error():
    with pytest.raises(KeyError, match="unknown service 'kafak'"):
        by_name("kafak")
