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


def normalize_phone_in(raw: str, *, region: str) -> str:
    """`raw` as E.164, read as a number of `region` (ISO country code) unless written internationally
    ("+54 9 11 ...", "00 54 ..."): a file's "11 5555-0001" is a national number, where
    normalize_phone's provider-minded guess would take ten digits as international. A number that
    is not valid for `region` but is valid with a "+" in front is taken as international."""
    text = (raw or "").strip()
    if not text:
        raise InvalidPhone(_("A phone number is required."))
    if text.startswith("00"):
        text = "+" + text[2:]
    candidates = [text]
    digits = "".join(ch for ch in text if ch.isdigit())
    if not text.startswith("+") and len(digits) >= 8:
        candidates.append("+" + digits)
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region or settings.CONVERSA_DEFAULT_REGION)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    raise InvalidPhone(_("'%(phone)s' is not a valid phone number (use international format, "
                         "e.g. +5491155550001).") % {"phone": raw})


def country_choices() -> list[tuple[str, str]]:
    """(region code, "AR (+54)") for every region phonenumbers knows, by code."""
    return [(region, f"{region} (+{phonenumbers.country_code_for_region(region)})")
            for region in sorted(phonenumbers.SUPPORTED_REGIONS)]
