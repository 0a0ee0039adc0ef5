// The one place dates are formatted: the manager's locale and time zone (the browser's own).
// Lists show relative times ("5m", "yesterday", "Mon", "12 May"), bubbles a clock time under
// a day separator, and anything further away the full date.

const locale = navigator.languages?.[0] || navigator.language || "en";
const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

const clockFormat = new Intl.DateTimeFormat(locale, { timeZone, hour: "2-digit", minute: "2-digit" });
const dayKeyFormat = new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" });
const weekdayFormat = new Intl.DateTimeFormat(locale, { timeZone, weekday: "short" });
const shortDateFormat = new Intl.DateTimeFormat(locale, { timeZone, day: "numeric", month: "short" });
const yearDateFormat = new Intl.DateTimeFormat(locale, { timeZone, day: "numeric", month: "short", year: "numeric" });
const longDayFormat = new Intl.DateTimeFormat(locale, { timeZone, weekday: "long", day: "numeric", month: "long" });
const longYearDayFormat = new Intl.DateTimeFormat(locale, { timeZone, weekday: "long", day: "numeric", month: "long", year: "numeric" });
const fullFormat = new Intl.DateTimeFormat(locale, { timeZone, weekday: "short", day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit" });
const days = new Intl.RelativeTimeFormat(locale, { numeric: "auto" });
const minutes = new Intl.NumberFormat(locale, { style: "unit", unit: "minute", unitDisplay: "narrow" });
const hours = new Intl.NumberFormat(locale, { style: "unit", unit: "hour", unitDisplay: "narrow" });

const capitalise = (text) => text.charAt(0).toLocaleUpperCase(locale) + text.slice(1);

// The calendar day in the manager's time zone, "YYYY-MM-DD".
export function dayKey(iso) {
  return dayKeyFormat.format(new Date(iso));
}

// Whole calendar days from `iso`'s day to today's (0 today, 1 yesterday).
function daysAgo(iso, now = new Date()) {
  return Math.round((Date.parse(dayKey(now)) - Date.parse(dayKey(iso))) / 86400000);
}

const sameYear = (iso, now = new Date()) => dayKey(iso).slice(0, 4) === dayKey(now).slice(0, 4);

export function clockTime(iso) {
  return iso ? clockFormat.format(new Date(iso)) : "";
}

// For the conversation list: "now", "5m", "3h" today; then yesterday, weekday, date.
export function relativeTime(iso, now = new Date()) {
  if (!iso) return "";
  const ago = Math.max(0, now - new Date(iso));
  const age = daysAgo(iso, now);
  if (age <= 0) {
    if (ago < 60000) return capitalise(days.format(0, "second"));
    if (ago < 3600000) return minutes.format(Math.floor(ago / 60000));
    return hours.format(Math.floor(ago / 3600000));
  }
  if (age === 1) return capitalise(days.format(-1, "day"));
  if (age < 7) return weekdayFormat.format(new Date(iso));
  return (sameYear(iso, now) ? shortDateFormat : yearDateFormat).format(new Date(iso));
}

// For day separators: "Today", "Yesterday", "Monday 12 May".
export function dayLabel(iso, now = new Date()) {
  const age = daysAgo(iso, now);
  if (age === 0 || age === 1) return capitalise(days.format(-age, "day"));
  return (sameYear(iso, now) ? longDayFormat : longYearDayFormat).format(new Date(iso));
}

// Anything that needs the whole date: "Fri, 12 Dec 2026, 09:00".
export function fullTime(iso) {
  return iso ? fullFormat.format(new Date(iso)) : "";
}

// Midnight (the manager's) starting `iso`'s day, as an ISO string.
export function startOfDay(iso) {
  const date = new Date(iso);
  const clock = new Intl.DateTimeFormat("en-GB", { timeZone, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" })
    .format(date).split(":").map(Number);
  return new Date(date.getTime() - ((clock[0] * 60 + clock[1]) * 60 + clock[2]) * 1000 - date.getMilliseconds()).toISOString();
}
