"""Keeps email addresses and phone numbers out of alerts, even where an identifier carries one.

Alerts are built from flags, which hold aggregates and identifiers, not people. But some identifiers
come straight from events: a canvasser id typed by a field app, a signup source taken from a UTM
field. Anything in those that looks like an email address or a phone number is replaced by a keyed
pseudonym (HMAC with the deployment secret, as BRIEF §2.4 asks for PII in analytics tables), so two
different people never collapse into one key, and the same one maps to the same key after a restart.
Geography ids (precincts, counties, regions) come from the operator's geography file and are kept.
"""

from __future__ import annotations

import hashlib
import hmac
import re

# The local part stops at characters that cannot appear unquoted in an address (RFC 5322 3.2.3: ":",
# ",", brackets...) and at "|" and "/", which join the parts of flag and unit ids (rare in real
# addresses), so "signups:jane@x.org" keeps its "signups:" prefix.
EMAIL = re.compile(r"[^\s@|/<>\"():;,\[\]]+@[^\s@|/<>\"():;,\[\]]+\.[A-Za-z]{2,}")
# Ten or more digits, optionally with +, spaces, dots, dashes or brackets between them: phone numbers
# (NANP numbers have 10 digits). Shorter runs (dates, canvasser ids like 004512) are left alone.
PHONE = re.compile(r"\+?\(?\d(?:[\s().-]{0,2}\d){9,}")


class Redactor:
    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("the redactor needs a non-empty secret")
        self._secret = secret

    def _pseudonym(self, kind: str, value: str) -> str:
        digest = hmac.new(self._secret, value.strip().lower().encode(), hashlib.sha256).hexdigest()[:10]
        return f"[{kind}:{digest}]"

    def __call__(self, text: str) -> str:
        text = EMAIL.sub(lambda m: self._pseudonym("email", m.group()), text)
        return PHONE.sub(lambda m: self._pseudonym("phone", re.sub(r"\D", "", m.group())), text)
