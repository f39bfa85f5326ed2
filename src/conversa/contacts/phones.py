"""Phone numbers are E.164 everywhere inside Conversa."""

from __future__ import annotations

import phonenumbers
from django.conf import settings
from django.utils.translation import gettext as _


class InvalidPhone(ValueError):
    pass


def normalize_phone(raw: str, *, strict: bool = True) -> str:
    """Return `raw` as E.164. Providers send "5491155550001" (no +): that is read as international.

    `strict` demands a number valid for its country (customers); business lines only need to be
    possible numbers, since test lines often use reserved ranges such as +1 555 01xx.
    """
    text = (raw or "").strip()
    if not text:
        raise InvalidPhone(_("A phone number is required."))
    digits = "".join(ch for ch in text if ch.isdigit())
    if not text.startswith("+") and digits and len(digits) >= 10 and not text.startswith("0"):
        text = "+" + digits
    try:
        number = phonenumbers.parse(text, settings.CONVERSA_DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(_("'%(phone)s' is not a phone number.") % {"phone": raw}) from exc
    ok = phonenumbers.is_valid_number(number) if strict else phonenumbers.is_possible_number(number)
    if not ok:
        raise InvalidPhone(_("'%(phone)s' is not a valid phone number (use international format, "
                             "e.g. +5491155550001).") % {"phone": raw})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def wa_id(e164: str) -> str:
    """WhatsApp ids are E.164 without the plus."""
    return e164.lstrip("+")
