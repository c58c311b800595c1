// The `normalize` transform (see ../SPEC.md) in TypeScript: masks `email`,
// turns `price` into integer `price_cents` by currency, drops `aud`, and
// emits one event per element of `items`.

import { Reject, type Emitter, type Event, type Params, type TransformObject } from "@sluice/plugin";

type Json = null | boolean | number | bigint | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const FACTORS: Record<string, number> = { usd: 100, eur: 100, gbp: 100, brl: 100, jpy: 1 };

const has = (obj: object, key: string): boolean => Object.prototype.hasOwnProperty.call(obj, key);

/** `first character***@domain`, or `***` without an `@` or when empty. */
export function mask(email: string): string {
  const at = email.lastIndexOf("@");
  const first = email.codePointAt(0); // the first character is a code point, not a UTF-16 unit
  if (first === undefined || at < 0) return "***";
  return `${String.fromCodePoint(first)}***@${email.slice(at + 1)}`;
}

/** `floor(price * factor + 0.5)` in doubles, then to an integer as Rust's `as i64` does (saturating). */
function cents(price: number, factor: number): number | bigint {
  const x = Math.floor(price * factor + 0.5);
  if (x >= 2 ** 63) return 9223372036854775807n;
  return Number.isSafeInteger(x) ? x : BigInt(x);
}

function parseObject(event: Event): JsonObject {
  let value: unknown;
  try {
    value = event.json();
  } catch {
    throw new Reject("expected a JSON object");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Reject("expected a JSON object");
  }
  return value as JsonObject;
}

export const transform: TransformObject<void> = {
  create(params: Params): void {
    params.only([]);
  },

  process(event: Event, out: Emitter): void {
    if (event.isTombstone) return out.forward();
    const obj = parseObject(event);
    const currencyValue = has(obj, "currency") ? obj.currency : undefined;
    if (typeof currencyValue !== "string") throw new Reject("currency must be a string");
    const currency = currencyValue.toLowerCase();
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
    const items = has(obj, "items") ? obj.items : undefined;
    if (Array.isArray(items)) {
      const { items: _, ...rest } = obj;
      items.forEach((item, i) => out.emitJson({ ...rest, item, item_index: i }));
    } else {
      out.emitJson(obj);
    }
  },
};
