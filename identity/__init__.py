"""Who may do what: roles, callers, local accounts, document access rules and the audit log,
one model for the page, the API and the command line."""

from identity.access import AccessRule, AccessRuleError, AccessRules, ScopeCache, may_see
from identity.audit import AuditLog
from identity.roles import Action, Caller, PermissionDenied, Role, local_operator
from identity.users import LocalUser, UserError, UserStore

__all__ = [
    "AccessRule",
    "AccessRuleError",
    "AccessRules",
    "Action",
    "AuditLog",
    "Caller",
    "LocalUser",
    "PermissionDenied",
    "Role",
    "ScopeCache",
    "UserError",
    "UserStore",
    "local_operator",
    "may_see",
]
