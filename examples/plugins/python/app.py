"""The reference `normalize` transform (see ../SPEC.md), in Python: masks
`email`, turns `price` into integer `price_cents` by currency, drops `aud`, and
emits one event per element of `items`."""

import math

import sluice

# Minor units per major unit, by lower-cased currency.
FACTORS = {"usd": 100.0, "eur": 100.0, "gbp": 100.0, "brl": 100.0, "jpy": 1.0}

# The largest and smallest i64: Rust's `as i64` saturates there.
I64_MAX = 2**63 - 1
I64_MIN = -(2**63)


def mask(email: str) -> str:
    """`jane.doe@example.com` -> `j***@example.com`; no `@` (or empty) -> `***`."""
    at = email.rfind("@")
    if not email or at < 0:
        return "***"
    return f"{email[0]}***@{email[at + 1:]}"


def cents(price: float, factor: float) -> int:
    """floor(price * factor + 0.5) in double precision, then to an integer
    (saturating, as Rust's `as i64` does)."""
    x = price * factor + 0.5
    if math.isnan(x):
        return 0
    if math.isinf(x):
        return I64_MAX if x > 0 else I64_MIN
    return max(I64_MIN, min(I64_MAX, math.floor(x)))


class Normalize(sluice.Transform):
    """Takes no parameters (the base class refuses any)."""

    def process(self, event: sluice.Event, out: sluice.Emitter) -> None:
        if event.is_tombstone:
            out.forward()
            return
        try:
            obj = event.json()
        except sluice.Reject:
            obj = None
        if not isinstance(obj, dict):
            raise sluice.Reject("expected a JSON object")

        currency = obj.get("currency")
        if not isinstance(currency, str):
            raise sluice.Reject("currency must be a string")
        currency = currency.lower()
        if currency == "aud":
            return  # dropped deliberately
        factor = FACTORS.get(currency)
        if factor is None:
            raise sluice.Reject(f"unknown currency {currency}")

        price = obj.get("price")
        # bool is an int in Python, but `true` is not a JSON number.
        if isinstance(price, bool) or not isinstance(price, (int, float)):
            raise sluice.Reject("price must be a non-negative number")
        try:
            price = float(price)  # a JSON integer, as a double (as serde_json's as_f64)
        except OverflowError:
            price = math.inf
        if not price >= 0.0:
            raise sluice.Reject("price must be a non-negative number")

        del obj["price"]
        obj["price_cents"] = cents(price, factor)
        obj["currency"] = currency.upper()
        email = obj.get("email")
        if isinstance(email, str):
            obj["email"] = mask(email)

        items = obj.get("items")
        if isinstance(items, list):
            del obj["items"]
            for i, item in enumerate(items):
                out.emit_json({**obj, "item": item, "item_index": i})
        else:
            out.emit_json(obj)
