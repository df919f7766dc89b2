"""Who may do what with which lineage: roles and their permissions, the principal a request or a
command acts as, the sensitivity labels of records and their owners, and the API tokens that
name a principal.

Pure rules, no I/O: the read path (:mod:`opslineage.query`) and the ingest pipeline
(:mod:`opslineage.ingest`) enforce them, the server and the CLI only say who is calling.
"""

from opslineage.governance.access import OUTCOMES, AccessDenied, AccessEvent, AccessTrail, Outcome
from opslineage.governance.labels import (
    DEFAULT_LEVEL,
    LEVELS,
    LabelRule,
    clears,
    level_of,
    parse_level,
    rules_from_contents,
)
from opslineage.governance.owners import SCOPES, Ownership, owners_from_contents, owners_of
from opslineage.governance.principal import Principal
from opslineage.governance.roles import (
    PERMISSIONS,
    ROLES,
    Permission,
    clearance_of,
    permissions_of,
)
from opslineage.governance.tokens import (
    SECRET_PREFIX,
    StoredToken,
    TokenInfo,
    TokenLookup,
    TokenStorage,
    authenticate,
    create_token,
    hash_secret,
    list_tokens,
    new_secret,
    parse_lifetime,
    parse_namespace,
    parse_role,
    parse_token_name,
    revoke,
)

__all__ = [
    "DEFAULT_LEVEL",
    "LEVELS",
    "OUTCOMES",
    "PERMISSIONS",
    "ROLES",
    "SCOPES",
    "SECRET_PREFIX",
    "AccessDenied",
    "AccessEvent",
    "AccessTrail",
    "LabelRule",
    "Outcome",
    "Ownership",
    "Permission",
    "Principal",
    "StoredToken",
    "TokenInfo",
    "TokenLookup",
    "TokenStorage",
    "authenticate",
    "clearance_of",
    "clears",
    "create_token",
    "hash_secret",
    "level_of",
    "list_tokens",
    "new_secret",
    "owners_from_contents",
    "owners_of",
    "parse_level",
    "parse_lifetime",
    "parse_namespace",
    "parse_role",
    "parse_token_name",
    "permissions_of",
    "revoke",
    "rules_from_contents",
]
