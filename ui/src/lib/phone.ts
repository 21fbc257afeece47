// E.164 phone numbers: formatted and validated as the user types.

/** Keeps a leading `+` and the digits; a missing `+` is added (numbers are always international). */
export function normalizeE164(input: string): string {
  const digits = input.replace(/\D/g, '').slice(0, 15);
  return digits === '' ? (input.trim().startsWith('+') ? '+' : '') : `+${digits}`;
}

/** `+` then 8–15 digits, not starting with 0 (ITU-T E.164). */
export function isValidE164(value: string): boolean {
  return /^\+[1-9]\d{7,14}$/.test(value);
}

/**
 * A readable form of what has been typed so far: NANP numbers as `+1 (415) 555-0100`, others grouped
 * as `+44 20 7946 0958`-like blocks. Display only; the value sent is always `normalizeE164`'s.
 */
export function formatAsYouType(input: string): string {
  const e164 = normalizeE164(input);
  const d = e164.slice(1);
  if (d === '') {
    return e164;
  }
  if (d.startsWith('1')) {
    const area = d.slice(1, 4);
    const mid = d.slice(4, 7);
    const last = d.slice(7, 11);
    let out = '+1';
    if (area) out += ` (${area}${area.length === 3 ? ')' : ''}`;
    if (mid) out += ` ${mid}`;
    if (last) out += `-${last}`;
    if (d.length > 11) out += ` ${d.slice(11)}`;
    return out;
  }
  // Country code (1–3 digits, a rough guess by its first digit), then blocks of 3–4.
  const ccLen = /^(2[0-7]|3[0-469]|4[013-9]|5[1-8]|6[0-6]|8[1246]|9[0-58])/.test(d) ? 2 : /^7/.test(d) ? 1 : 3;
  const cc = d.slice(0, ccLen);
  const rest = d.slice(ccLen);
  const blocks = rest.match(/.{1,4}/g) ?? [];
  return [`+${cc}`, ...blocks].join(' ');
}

/** Why the number cannot be dialled yet, or `null` when it can. */
export function e164Problem(value: string): string | null {
  const e164 = normalizeE164(value);
  if (e164 === '' || e164 === '+') {
    return 'Enter the number with its country code, e.g. +1 415 555 0100.';
  }
  if (e164.startsWith('+0')) {
    return 'A country code never starts with 0.';
  }
  if (e164.length - 1 < 8) {
    return 'Too short for an international number.';
  }
  if (!isValidE164(e164)) {
    return 'Not a valid international (E.164) number.';
  }
  return null;
}
