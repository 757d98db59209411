"""STS: GetCallerIdentity answers who signed the request, for every identity."""

from __future__ import annotations

from aws.gateway.provider import Provider, RequestContext


class StsProvider(Provider):
    open_to_all_users = True

    def get_caller_identity(self, context: RequestContext, params: dict) -> dict:
        identity = context.identity
        return {"UserId": identity.access_key, "Account": context.account_id, "Arn": identity.arn}
