"""Privacy: pseudonymize, redact, retention. Everything a post passes before it may be stored."""

from murmur.privacy.gate import PrivacyGate
from murmur.privacy.pseudonym import Pseudonymizer
from murmur.privacy.redact import Redactor, domain_of

__all__ = ["PrivacyGate", "Pseudonymizer", "Redactor", "domain_of"]
