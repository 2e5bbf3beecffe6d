"""Country and time zone of a customer, from the phone number or the BSUID's country prefix."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from phonenumbers import timezone as number_timezones


@lru_cache(maxsize=65536)
def locate(wa_id: str | None, user_id: str | None) -> tuple[str | None, str | None]:
    """(ISO country, IANA time zone) for a customer; (None, None) when nothing tells.

    A phone number gives both. Where a number spans several zones (mobile numbers in Spain,
    Brazil, Indonesia...), the zone of the country's example fixed-line number stands in: it is
    the capital's. A BSUID such as `ES.1234` gives the country and, the same way, its main zone.
    """
    if wa_id:
        try:
            number = phonenumbers.parse("+" + wa_id.lstrip("+"))
        except phonenumbers.NumberParseException:
            number = None
        if number is not None:
            region = phonenumbers.region_code_for_number(number)
            if region and region != "ZZ":
                zones = [z for z in number_timezones.time_zones_for_number(number) if z != "Etc/Unknown"]
                zone = zones[0] if len(zones) == 1 else _main_zone(region)
                return region, zone
    if user_id and "." in user_id:
        region = user_id.split(".", 1)[0].upper()
        if region in phonenumbers.SUPPORTED_REGIONS:
            return region, _main_zone(region)
    return None, None


@lru_cache(maxsize=512)
def _main_zone(region: str) -> str | None:
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.FIXED_LINE)
    if example is None:
        return None
    zones = [z for z in number_timezones.time_zones_for_number(example) if z != "Etc/Unknown"]
    return zones[0] if zones else None
