/** The restore form's time picker: the recoverable window as `datetime-local` bounds (UTC), and back. */

export interface RecoverableWindow {
  start: string | null;
  end: string | null;
}

/** "2026-12-06T02:30:05.123Z" -> "2026-12-06T02:30:05" (the picker works in UTC, to the second). */
export function toPickerValue(iso: string | null): string {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toISOString().slice(0, 19);
}

/** The picker's value (UTC) as the API's ISO-8601 time. */
export function fromPickerValue(value: string): string {
  const withSeconds = value.length === 16 ? `${value}:00` : value;
  return `${withSeconds}Z`;
}

/** Whether a picked time is inside the window (the API says the same with a 400 naming the window). */
export function insideWindow(value: string, window: RecoverableWindow): boolean {
  if (!value || !window.start || !window.end) return false;
  const at = new Date(fromPickerValue(value)).getTime();
  return at >= new Date(window.start).getTime() - 999 && at <= new Date(window.end).getTime();
}
