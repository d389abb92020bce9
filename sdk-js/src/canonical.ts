/**
 * Canonical string form of attribute values and unit ids, the same in every SDK.
 *
 * - a string is itself;
 * - `true` / `false` are "true" / "false";
 * - an integer (a bigint, or an integral number below 1e21 in magnitude) is its
 *   exact decimal digits (`1`, `1.0` and `-0` give "1", "1", "0");
 * - any other number is Python's shortest round-trip `repr` ("0.1", "1e-07",
 *   "1e+21", "nan", "inf"), so that both SDKs compare the same strings;
 * - null, undefined and anything else (arrays, objects) have no canonical form:
 *   such an attribute counts as missing.
 */

const INTEGRAL_LIMIT = 1e21;

function pythonRepr(value: number): string {
  if (Number.isNaN(value)) return "nan";
  if (value === Infinity) return "inf";
  if (value === -Infinity) return "-inf";
  const [mantissa, exponent] = value.toExponential().split("e") as [string, string];
  const power = Number(exponent);
  // Python writes plain decimals for exponents in [-4, 16) and scientific
  // notation with at least two exponent digits otherwise; JavaScript switches
  // at 1e-7 and 1e21 instead.
  if (power >= -4 && power < 16) return String(value);
  const digits = String(Math.abs(power)).padStart(2, "0");
  return `${mantissa}e${power < 0 ? "-" : "+"}${digits}`;
}

/** Canonical string of a scalar value, `null` if it has none. */
/**
 * Longest unit id, in characters (code points) of its canonical form: the one limit the
 * service applies on every route. Longer ids are never bucketed (baseline, `invalid_unit`)
 * and `track()` refuses them, so no unit is assigned that could not report its outcomes.
 */
export const MAX_UNIT_ID = 256;

/** Whether `unit` has more than {@link MAX_UNIT_ID} code points (cheap for short ids). */
export function tooLong(unit: string): boolean {
  if (unit.length <= MAX_UNIT_ID) return false;
  if (unit.length > 2 * MAX_UNIT_ID) return true;
  let points = 0;
  for (const _ of unit) if (++points > MAX_UNIT_ID) return true;
  return false;
}

export function canonical(value: unknown): string | null {
  switch (typeof value) {
    case "string":
      return value;
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (Number.isInteger(value) && Math.abs(value) < INTEGRAL_LIMIT) {
        // Exact digits of the double, as Python's str(int(x)) prints them.
        return Number.isSafeInteger(value) ? String(value) : BigInt(value).toString();
      }
      return pythonRepr(value);
    case "bigint":
      return value.toString();
    default:
      return null;
  }
}
