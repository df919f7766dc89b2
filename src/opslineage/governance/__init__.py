"""Who may do what with which lineage: roles and their permissions, the principal a request or a
command acts as, the sensitivity labels of records and their owners.

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

__all__ = [
    "DEFAULT_LEVEL",
    "LEVELS",
    "OUTCOMES",
    "PERMISSIONS",
    "ROLES",
    "SCOPES",
    "AccessDenied",
    "AccessEvent",
    "AccessTrail",
    "LabelRule",
    "Outcome",
    "Ownership",
    "Permission",
    "Principal",
    "clearance_of",
    "clears",
    "level_of",
    "owners_from_contents",
    "owners_of",
    "parse_level",
    "permissions_of",
    "rules_from_contents",
]
