// Day separators in the thread and relative times in the list, kept current without touching
// how the thread renders: an observer adds a separator before the first message of each day
// (in the manager's time zone), and a minute timer refreshes the list's relative times.

import { dayKey, dayLabel, fullTime, relativeTime, startOfDay } from "./dates.js";

function separator(day, created) {
  const node = document.createElement("div");
  node.className = "day-separator";
  node.setAttribute("role", "separator");
  node.dataset.day = day;
  // thread.js places a new message after the last node not newer than it: a separator sits
  // at the start of its day.
  node.dataset.created = startOfDay(created);
  const label = document.createElement("span");
  label.textContent = dayLabel(created);
  node.setAttribute("aria-label", label.textContent);
  node.append(label);
  return node;
}

function placeSeparators(box) {
  let lastDay = null;
  for (const node of [...box.children]) {
    if (node.classList.contains("day-separator")) {
      const next = node.nextElementSibling;
      const nextDay = next?.dataset.created && !next.classList.contains("day-separator") ? dayKey(next.dataset.created) : null;
      if (nextDay === null || nextDay === lastDay || nextDay !== node.dataset.day) node.remove();
      continue;
    }
    if (!node.dataset.created) continue;
    const day = dayKey(node.dataset.created);
    if (day !== lastDay) {
      const before = node.previousElementSibling;
      if (!(before?.classList.contains("day-separator") && before.dataset.day === day)) {
        node.before(separator(day, node.dataset.created));
      }
      lastDay = day;
    }
  }
}

export function watchThread(box) {
  const observer = new MutationObserver(() => {
    observer.disconnect();
    // Separators added above what the reader looks at must not move it.
    const fromBottom = box.scrollHeight - box.scrollTop;
    placeSeparators(box);
    box.scrollTop = box.scrollHeight - fromBottom;
    observer.observe(box, { childList: true });
  });
  placeSeparators(box);
  observer.observe(box, { childList: true });
}

export function refreshListTimes(root) {
  const update = () => {
    for (const time of root.querySelectorAll("time[datetime]")) {
      const text = relativeTime(time.dateTime);
      if (time.textContent !== text) time.textContent = text;
      if (!time.title) time.title = fullTime(time.dateTime);
    }
  };
  new MutationObserver(update).observe(root, { childList: true, subtree: true });
  setInterval(update, 60000);
  update();
}
