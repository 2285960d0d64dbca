"""Security building blocks, pure or nearly so (standard library and
:mod:`phalanx.core` only; no sockets, no asyncio):

- :mod:`~phalanx.security.scope`: the target scope guard (which hosts,
  addresses and ports a run may hit; judged before and after DNS);
- :mod:`~phalanx.security.redaction`: the one redaction module every output
  uses to mask secrets and credentials;
- :mod:`~phalanx.security.secrets`: reading secrets from the environment or
  mounted files (file reads at script start only), each value registered for
  redaction.
"""

from phalanx.security.redaction import MASK, MIN_SECRET_LENGTH, Redactor, is_sensitive_name
from phalanx.security.scope import Decision, RuleKind, ScopeGuard, ScopeRule, normalize_host
from phalanx.security.secrets import ENV_PREFIX, SecretError, SecretStore

__all__ = [
    "ENV_PREFIX",
    "MASK",
    "MIN_SECRET_LENGTH",
    "Decision",
    "Redactor",
    "RuleKind",
    "ScopeGuard",
    "ScopeRule",
    "SecretError",
    "SecretStore",
    "is_sensitive_name",
    "normalize_host",
]
