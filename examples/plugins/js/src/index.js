// The `normalize` transform (see ../SPEC.md) in JavaScript: masks `email`,
// turns `price` into integer `price_cents` by currency, drops `aud`, and
// emits one event per element of `items`.

import { Reject } from "@sluice/plugin";

const FACTORS = { usd: 100, eur: 100, gbp: 100, brl: 100, jpy: 1 };

/** `first character***@domain`, or `***` without an `@` or when empty. */
export function mask(email) {
  const at = email.lastIndexOf("@");
  if (email.length === 0 || at < 0) return "***";
  // The first character is the first code point, not the first UTF-16 unit.
  return `${String.fromCodePoint(email.codePointAt(0))}***@${email.slice(at + 1)}`;
}

/** `floor(price * factor + 0.5)` in doubles, then to an integer as Rust's `as i64` does (saturating). */
function cents(price, factor) {
  const x = Math.floor(price * factor + 0.5);
  if (x >= 2 ** 63) return 9223372036854775807n;
  return Number.isSafeInteger(x) ? x : BigInt(x);
}

const has = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);

export const transform = {
  create(params) {
    params.only([]);
  },

  process(event, out) {
    if (event.isTombstone) return out.forward();
    let obj;
    try {
      obj = event.json();
    } catch {
      throw new Reject("expected a JSON object");
    }
    if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
      throw new Reject("expected a JSON object");
    }
    if (!has(obj, "currency") || typeof obj.currency !== "string") {
      throw new Reject("currency must be a string");
    }
    const currency = obj.currency.toLowerCase();
    if (currency === "aud") return;
    if (!has(FACTORS, currency)) throw new Reject(`unknown currency ${currency}`);
    const price = has(obj, "price") ? obj.price : undefined;
    if (typeof price !== "number" || !(price >= 0)) {
      throw new Reject("price must be a non-negative number");
    }
    delete obj.price;
    obj.price_cents = cents(price, FACTORS[currency]);
    obj.currency = currency.toUpperCase();
    if (has(obj, "email") && typeof obj.email === "string") obj.email = mask(obj.email);
    if (has(obj, "items") && Array.isArray(obj.items)) {
      const { items, ...rest } = obj;
      items.forEach((item, i) => out.emitJson({ ...rest, item, item_index: i }));
    } else {
      out.emitJson(obj);
    }
  },
};
