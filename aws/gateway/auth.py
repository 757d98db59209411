"""Who may call: the stack's admin key and the users declared in resources.yaml."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lakelab.resources import resources
from lakelab.settings import Settings

ACCOUNT_ID = "000000000000"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Identity:
    name: str
    access_key: str
    secret_key: str
    admin: bool = False

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT_ID}:user/{self.name}"


def load_identities(settings: Settings) -> dict[str, Identity]:
    """Identities by access key: `admin` (settings.s3_access_key) and each declared user whose keys
    are set; a user without keys is skipped with a warning, as S3 cannot know it either."""
    admin = Identity("admin", settings.s3_access_key, settings.s3_secret_key.get_secret_value(), admin=True)
    identities = {admin.access_key: admin}
    for user in resources().users:
        try:
            access, secret = user.keys()
        except KeyError as exc:
            log.warning("%s: not accepted by the AWS endpoint", exc)
            continue
        identities.setdefault(access, Identity(user.name, access, secret))
    return identities
