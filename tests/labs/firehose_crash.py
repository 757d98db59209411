"""Run the Firehose stand-in and kill it (exit 70, the batch not committed) at one point of its
first flush: after its intent is committed, or after the data is written but before the offsets
are committed. Lab B's exactly-once test runs it as a process of its own:

    python -m tests.labs.firehose_crash after-intent|after-data '<DeliveryConfig as JSON>'
"""

import json
import logging
import os
import sys

from aws.firehose.delivery import Batch, DeliveryConfig, Firehose
from lakelab.settings import get_settings

CRASHED = 70


class CrashingFirehose(Firehose):
    def __init__(self, settings, config: DeliveryConfig, point: str) -> None:
        super().__init__(settings, config)
        self.point = point

    def _intent(self, batch: Batch) -> None:
        super()._intent(batch)
        if self.point == "after-intent":
            self._crash()

    def _commit(self, batch: Batch) -> None:
        if self.point == "after-data":
            self._crash()
        super()._commit(batch)

    def _crash(self) -> None:
        logging.error("crashing %s: exiting without committing", self.point)
        logging.shutdown()
        os._exit(CRASHED)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    point, document = sys.argv[1], json.loads(sys.argv[2])
    config = DeliveryConfig(**{**document, "required_fields": tuple(document["required_fields"])})
    CrashingFirehose(get_settings(), config, point).run()
    sys.exit("the delivery stopped without reaching its crash point")
