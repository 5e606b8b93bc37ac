"""Privacy: pseudonymize, redact, retention. Everything a post passes before it may be stored."""

from murmur.privacy.gate import PrivacyGate
from murmur.privacy.pseudonym import Pseudonymizer
from murmur.privacy.redact import Redactor

__all__ = ["PrivacyGate", "Pseudonymizer", "Redactor"]
