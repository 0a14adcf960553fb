"""How a number sent as text may be written: ASCII digits, an optional sign and, for a
decimal, one point. Python's ``Decimal()`` and ``int()`` (and so DRF's and Django's number
fields) also read "1_000" as 1000, "٣" or other Unicode digits as 3 and, for a decimal, "1e3"
as 1000: each a typo or a surprise read as some other number. Imports and the API refuse them
alike."""

import re

PLAIN_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)", re.ASCII)
PLAIN_WHOLE = re.compile(r"[+-]?\d+", re.ASCII)
# The largest value of a PostgreSQL ``integer`` column (Django's IntegerField): the model's
# validators refuse a larger one, and the API's fields say so up front (and in the schema).
INTEGER_COLUMN_MAX = 2**31 - 1
