"""The currencies a price may be in: ISO 4217's codes for the currencies in circulation.

Funds, precious metals and testing codes (BOV, XAU, XTS, XXX) are left out, and so are codes
withdrawn by the end of 2025 (BGN, HRK, ANG, CUC, SLL, ZWL); a product already stored with one
keeps it until it is next edited. Stored rows are held to three capitals by a database
constraint; this list is checked wherever a price is written (admin, API, imports).
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

_CODES = """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
    CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS
    GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW
    KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR
    MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR
    SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX
    USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
"""
CURRENCY_CODES = frozenset(_CODES.split())
NOT_THREE_CAPITALS = "a 3-letter ISO currency code in capitals, such as GBP"


def currency_problem(code: str) -> str | None:
    """What is wrong with ``code`` as a product's currency, or None."""
    if not re.fullmatch(r"[A-Z]{3}", code):
        return NOT_THREE_CAPITALS
    if code not in CURRENCY_CODES:
        return f"{code} is not the ISO 4217 code of a currency in circulation, such as GBP"
    return None


def validate_currency(value: str) -> None:
    problem = currency_problem(value)
    if problem is not None:
        raise ValidationError(problem, code="invalid")
